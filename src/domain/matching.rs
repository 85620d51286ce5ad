//! Suitable agents: which agents may run a task (hard filters), and how well each fits (scores per strategy).
//!
//! Scores are 0–100, higher is better:
//! - `best_fit`: skill match, the share of the task's required capabilities found in the agent's
//!   specializations (case-insensitive); 100 when none are required.
//! - `balanced`: `0.6 × skill match + 0.4 × free capacity`, where free capacity is `100 − committed`
//!   clamped to 0–100, and committed is the utilization (as defined in [`super::capacity`]) plus the agent's
//!   queued ready work (its estimates) in the same unit. Counting the queue spreads a burst of assignments:
//!   a ready task weighs on its agent from the moment it is assigned, not only once it is started.
//! - `fastest`: how soon the agent could start the task, by its forecast: `100 × (1 − wait / 24 h)`, 0 for a
//!   wait of a day or more. The order uses the exact projected start (ties by utilization), not the rounded
//!   score.
//!
//! Agents that pass the hard filters but cannot accept work are ranked after every agent that can.

use super::agent::{Agent, AgentStatus};
use super::capacity::{self, one_decimal, AgentLoad, CapacityLimits};
use super::task::{Task, TaskRequirements};
use super::text_enum::text_enum;
use serde::Serialize;
use std::cmp::Ordering;
use utoipa::ToSchema;

text_enum! {
    pub enum Strategy { BestFit => "best_fit", Fastest => "fastest", Balanced => "balanced" }
}

pub const DEFAULT_LIMIT: usize = 5;
pub const MAX_LIMIT: usize = 100;
const DAY_MS: f64 = 86_400_000.0;

/// Why an agent was left out before scoring.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exclusion {
    NoGpu,
    NoInternet,
    NotEnoughMemory,
    Suspended,
    Offline,
}

/// The hard filters: the task's requirements against the agent's environment, and an agent that can work.
pub fn check_requirements(agent: &Agent, requirements: &TaskRequirements) -> Result<(), Exclusion> {
    match agent.status {
        AgentStatus::Suspended => return Err(Exclusion::Suspended),
        AgentStatus::Offline => return Err(Exclusion::Offline),
        _ => {}
    }
    let c = &agent.constraints;
    if requirements.requires_gpu && !c.can_run_gpu {
        return Err(Exclusion::NoGpu);
    }
    if requirements.requires_internet && !c.has_internet {
        return Err(Exclusion::NoInternet);
    }
    if requirements.min_memory_mb.is_some_and(|min| c.max_memory_mb < min) {
        return Err(Exclusion::NotEnoughMemory);
    }
    Ok(())
}

/// The required capabilities the agent has, and the ones it lacks, compared case-insensitively.
pub fn skill_match(specializations: &[String], required: &[String]) -> (Vec<String>, Vec<String>) {
    let has = |capability: &String| specializations.iter().any(|s| s.eq_ignore_ascii_case(capability));
    required.iter().cloned().partition(has)
}

/// The skill match in percent: matched / required × 100, or 100 when nothing is required.
pub fn skill_percent(matched: usize, required: usize) -> f64 {
    if required == 0 {
        100.0
    } else {
        matched as f64 * 100.0 / required as f64
    }
}

/// Free capacity in percent: 100 − utilization, clamped to 0–100.
pub fn free_percent(utilization_percent: f64) -> f64 {
    (100.0 - utilization_percent).clamp(0.0, 100.0)
}

/// The share of the agent's day that its in-progress remainder and its queued ready work take, in percent.
pub fn committed_percent(load: &AgentLoad, queued_minutes: i64) -> f64 {
    let max_minutes = i64::from(load.max_minutes_per_day.max(1));
    (load.estimated_minutes_remaining + queued_minutes) as f64 * 100.0 / max_minutes as f64
}

pub fn balanced_score(skill: f64, committed_percent: f64) -> f64 {
    0.6 * skill + 0.4 * free_percent(committed_percent)
}

pub fn fastest_score(wait_ms: i64) -> f64 {
    100.0 * (1.0 - (wait_ms.max(0) as f64 / DAY_MS).min(1.0))
}

/// One agent's place in the ranking.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Candidate {
    pub rank: usize,
    pub agent_id: String,
    pub agent_name: String,
    pub role: String,
    pub level: super::AgentLevel,
    /// The strategy's score, 0–100, one decimal.
    pub score: f64,
    /// Percent of the required capabilities the agent has.
    pub skill_match: f64,
    pub missing_capabilities: Vec<String>,
    pub utilization_percent: f64,
    pub in_progress_count: usize,
    pub max_concurrent_tasks: i32,
    pub can_accept_work: bool,
    /// The agent has failed this task before: it ranks after every agent that can accept work and has not,
    /// so a task that went wrong in one pair of hands goes to another when there is one.
    pub failed_it_before: bool,
    /// When the agent is projected to be free (the end of its current queue).
    pub available_at: i64,
    /// When it could start this task, by claim order in its queue.
    pub projected_start_at: i64,
    pub reason: String,
}

/// How many agents each hard filter left out.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Excluded {
    pub no_gpu: usize,
    pub no_internet: usize,
    pub not_enough_memory: usize,
    pub suspended: usize,
    pub offline: usize,
}

impl Excluded {
    fn count(&mut self, why: Exclusion) {
        match why {
            Exclusion::NoGpu => self.no_gpu += 1,
            Exclusion::NoInternet => self.no_internet += 1,
            Exclusion::NotEnoughMemory => self.not_enough_memory += 1,
            Exclusion::Suspended => self.suspended += 1,
            Exclusion::Offline => self.offline += 1,
        }
    }

    pub fn total(&self) -> usize {
        self.no_gpu + self.no_internet + self.not_enough_memory + self.suspended + self.offline
    }
}

/// `GET /api/tasks/{id}/suitable-agents`.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Ranking {
    pub task_id: String,
    pub strategy: Strategy,
    /// Agents that passed the hard filters.
    pub eligible: usize,
    pub excluded: Excluded,
    /// Best first: every agent that can accept work before any that cannot; at most `limit`.
    pub candidates: Vec<Candidate>,
}

impl Ranking {
    /// The best candidate that can accept work. An agent who failed the task before is chosen only when every
    /// ranked agent has: a task that went wrong in one pair of hands waits for another (the SLO rules watch
    /// the wait), rather than going back to the hands it failed in.
    pub fn best(&self) -> Option<&Candidate> {
        let someone_new = self.candidates.iter().any(|c| !c.failed_it_before);
        self.candidates
            .iter()
            .find(|c| c.can_accept_work && !(someone_new && c.failed_it_before))
    }
}

struct Scored {
    candidate: Candidate,
    sort_key: f64,
}

/// Ranks `agents` (each with its open tasks) for `task`.
pub fn rank<'a>(
    task: &Task,
    agents: impl IntoIterator<Item = (&'a Agent, Vec<&'a Task>)>,
    strategy: Strategy,
    limit: usize,
    now: i64,
    limits: CapacityLimits,
) -> Ranking {
    let mut excluded = Excluded::default();
    let mut scored = Vec::new();
    for (agent, tasks) in agents {
        if let Err(why) = check_requirements(agent, &task.requirements) {
            excluded.count(why);
            continue;
        }
        scored.push(score(task, agent, &tasks, strategy, now, limits));
    }
    let eligible = scored.len();
    scored.sort_by(|a, b| {
        b.candidate
            .can_accept_work
            .cmp(&a.candidate.can_accept_work)
            .then(a.candidate.failed_it_before.cmp(&b.candidate.failed_it_before))
            .then(b.sort_key.partial_cmp(&a.sort_key).unwrap_or(Ordering::Equal))
            .then(
                a.candidate
                    .utilization_percent
                    .partial_cmp(&b.candidate.utilization_percent)
                    .unwrap_or(Ordering::Equal),
            )
            .then(a.candidate.agent_name.cmp(&b.candidate.agent_name))
    });
    let candidates = scored
        .into_iter()
        .take(limit)
        .enumerate()
        .map(|(i, s)| Candidate {
            rank: i + 1,
            ..s.candidate
        })
        .collect();
    Ranking {
        task_id: task.id.clone(),
        strategy,
        eligible,
        excluded,
        candidates,
    }
}

fn score(task: &Task, agent: &Agent, tasks: &[&Task], strategy: Strategy, now: i64, limits: CapacityLimits) -> Scored {
    let load: AgentLoad = capacity::load(agent, tasks, now, limits);
    let required = &task.requirements.capabilities;
    let (matched, missing) = skill_match(&agent.specializations, required);
    let skill = skill_percent(matched.len(), required.len());
    let available_at = capacity::available_at(tasks, now);
    let projected_start_at = capacity::projected_start(tasks, task, now);
    let wait_ms = projected_start_at - now;
    let skill_text = if required.is_empty() {
        "no capabilities required".to_string()
    } else {
        format!(
            "{}% skill match ({} of {})",
            skill.round(),
            matched.len(),
            required.len()
        )
    };
    let (score, sort_key, why) = match strategy {
        Strategy::BestFit => (skill, skill, skill_text),
        Strategy::Balanced => {
            let queued = capacity::queued_minutes(tasks);
            let committed = committed_percent(&load, queued);
            let value = balanced_score(skill, committed);
            let text = if queued > 0 {
                format!(
                    "{skill_text}, {}% free capacity ({queued} min queued)",
                    one_decimal(free_percent(committed))
                )
            } else {
                format!("{skill_text}, {}% free capacity", one_decimal(free_percent(committed)))
            };
            (value, value, text)
        }
        Strategy::Fastest => {
            let text = if wait_ms <= 0 {
                "can start now".to_string()
            } else {
                format!("can start in {} min", (wait_ms + 59_999) / 60_000)
            };
            // Earlier start sorts first: the key is the negated start.
            (fastest_score(wait_ms), -(projected_start_at as f64), text)
        }
    };
    let failed_it_before = task
        .failures
        .iter()
        .any(|f| f.agent_id.as_deref() == Some(agent.id.as_str()));
    let mut reason = match load.refusal(limits) {
        Some(refusal) => format!("cannot accept work: {refusal}; {why}"),
        None => format!("{why}; {}% utilized", load.utilization_percent),
    };
    if failed_it_before {
        reason.push_str("; failed this task before");
    }
    Scored {
        sort_key,
        candidate: Candidate {
            rank: 0,
            agent_id: agent.id.clone(),
            agent_name: agent.name.clone(),
            role: agent.role.clone(),
            level: agent.level,
            score: one_decimal(score),
            skill_match: one_decimal(skill),
            missing_capabilities: missing,
            utilization_percent: load.utilization_percent,
            in_progress_count: load.in_progress_count,
            max_concurrent_tasks: load.max_concurrent_tasks,
            can_accept_work: load.can_accept_work,
            failed_it_before,
            available_at,
            projected_start_at,
            reason,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::agent::{register, AgentDraft};
    use crate::domain::task::{create, TaskDraft, TaskStatus};
    use serde_json::json;

    const MIN: i64 = 60_000;

    fn agent(name: &str, extra: serde_json::Value) -> Agent {
        let mut body = json!({ "name": name });
        if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
            b.extend(e.clone());
        }
        let draft: AgentDraft = serde_json::from_value(body).unwrap();
        register(draft, name.into(), 0).unwrap()
    }

    fn task(requirements: serde_json::Value) -> Task {
        let draft: TaskDraft = serde_json::from_value(json!({"title": "job", "requirements": requirements})).unwrap();
        create(draft, "job".into(), "admin".into(), 0).unwrap()
    }

    fn busy(agent: &Agent, id: &str, minutes: i32) -> Task {
        let mut t = task(json!({}));
        t.id = id.into();
        t.status = TaskStatus::InProgress;
        t.estimated_minutes = Some(minutes);
        t.assignee_id = Some(agent.id.clone());
        t
    }

    #[test]
    fn each_hard_filter_excludes_an_agent() {
        let needs = TaskRequirements {
            requires_gpu: true,
            requires_internet: true,
            min_memory_mb: Some(8192),
            capabilities: vec![],
        };
        let fits = agent(
            "fits",
            json!({"constraints": {"canRunGpu": true, "hasInternet": true, "maxMemoryMb": 8192}}),
        );
        assert_eq!(check_requirements(&fits, &needs), Ok(()));
        let no_gpu = agent(
            "nogpu",
            json!({"constraints": {"canRunGpu": false, "maxMemoryMb": 16384}}),
        );
        assert_eq!(check_requirements(&no_gpu, &needs), Err(Exclusion::NoGpu));
        let offline_box = agent(
            "airgap",
            json!({"constraints": {"canRunGpu": true, "hasInternet": false, "maxMemoryMb": 16384}}),
        );
        assert_eq!(check_requirements(&offline_box, &needs), Err(Exclusion::NoInternet));
        let small = agent(
            "small",
            json!({"constraints": {"canRunGpu": true, "maxMemoryMb": 8191}}),
        );
        assert_eq!(check_requirements(&small, &needs), Err(Exclusion::NotEnoughMemory));
        let mut suspended = fits.clone();
        suspended.status = AgentStatus::Suspended;
        assert_eq!(check_requirements(&suspended, &needs), Err(Exclusion::Suspended));
        let mut offline = fits.clone();
        offline.status = AgentStatus::Offline;
        assert_eq!(check_requirements(&offline, &needs), Err(Exclusion::Offline));
        // Internet is a requirement only when the task asks for it: an air-gapped agent may take other work.
        assert_eq!(check_requirements(&offline_box, &TaskRequirements::default()), Ok(()));
    }

    #[test]
    fn skill_match_is_a_share_of_the_required_capabilities() {
        let specs = vec!["Python".to_string(), "pytorch".to_string()];
        let required = vec![
            "python".to_string(),
            "pytorch".to_string(),
            "machine_learning".to_string(),
        ];
        let (matched, missing) = skill_match(&specs, &required);
        assert_eq!(matched, ["python", "pytorch"]);
        assert_eq!(missing, ["machine_learning"]);
        assert!((skill_percent(2, 3) - 66.666).abs() < 0.01);
        assert_eq!(skill_percent(0, 0), 100.0);
    }

    #[test]
    fn strategies_score_as_documented() {
        // 3 required capabilities; ml has all three, py two of them.
        let t = task(json!({"capabilities": ["python", "pytorch", "ml"]}));
        let ml = agent(
            "ml",
            json!({"specializations": ["python", "pytorch", "ml"], "maxMinutesPerDay": 400}),
        );
        let py = agent(
            "py",
            json!({"specializations": ["python", "pytorch"], "maxMinutesPerDay": 400}),
        );
        // ml has 240 of 400 minutes in progress (60 % utilized); py is idle.
        let ml_work = busy(&ml, "w1", 240);
        let agents = || vec![(&ml, vec![&ml_work]), (&py, vec![])];
        let limits = CapacityLimits::default();

        let best = rank(&t, agents(), Strategy::BestFit, 5, 0, limits);
        let scores: Vec<(&str, f64)> = best
            .candidates
            .iter()
            .map(|c| (c.agent_name.as_str(), c.score))
            .collect();
        assert_eq!(scores, [("ml", 100.0), ("py", 66.7)]);

        // balanced: ml 0.6 × 100 + 0.4 × 40 = 76; py 0.6 × 66.67 + 0.4 × 100 = 80.
        let balanced = rank(&t, agents(), Strategy::Balanced, 5, 0, limits);
        let scores: Vec<(&str, f64)> = balanced
            .candidates
            .iter()
            .map(|c| (c.agent_name.as_str(), c.score))
            .collect();
        assert_eq!(scores, [("py", 80.0), ("ml", 76.0)]);
        assert_eq!(balanced.candidates[0].rank, 1);
        assert_eq!(balanced.candidates[1].rank, 2);

        // fastest: py can start now (100); ml after 240 minutes: 100 × (1 − 240/1440) = 83.3.
        let fastest = rank(&t, agents(), Strategy::Fastest, 5, 0, limits);
        let scores: Vec<(&str, f64)> = fastest
            .candidates
            .iter()
            .map(|c| (c.agent_name.as_str(), c.score))
            .collect();
        assert_eq!(scores, [("py", 100.0), ("ml", 83.3)]);
        assert_eq!(fastest.candidates[1].projected_start_at, 240 * MIN);
        assert_eq!(fastest.candidates[1].available_at, 240 * MIN);
    }

    #[test]
    fn ties_break_by_utilization_then_name() {
        let t = task(json!({}));
        let b = agent("bb", json!({}));
        let a = agent("aa", json!({}));
        let c = agent("cc", json!({}));
        let c_work = busy(&c, "w", 15);
        let ranking = rank(
            &t,
            vec![(&c, vec![&c_work]), (&b, vec![]), (&a, vec![])],
            Strategy::BestFit,
            5,
            0,
            CapacityLimits::default(),
        );
        let names: Vec<&str> = ranking.candidates.iter().map(|c| c.agent_name.as_str()).collect();
        assert_eq!(names, ["aa", "bb", "cc"]);
    }

    #[test]
    fn agents_that_cannot_accept_work_come_last_with_a_reason() {
        let t = task(json!({"capabilities": ["rust"]}));
        let expert = agent("expert", json!({"specializations": ["rust"], "maxConcurrentTasks": 1}));
        let novice = agent("novice", json!({}));
        let work = busy(&expert, "w", 30);
        let ranking = rank(
            &t,
            vec![(&expert, vec![&work]), (&novice, vec![])],
            Strategy::BestFit,
            5,
            0,
            CapacityLimits::default(),
        );
        assert_eq!(ranking.candidates[0].agent_name, "novice");
        assert!(ranking.candidates[0].can_accept_work);
        assert_eq!(ranking.candidates[1].agent_name, "expert");
        assert!(!ranking.candidates[1].can_accept_work);
        assert!(
            ranking.candidates[1].reason.starts_with("cannot accept work: 1 of 1"),
            "{}",
            ranking.candidates[1].reason
        );
        assert_eq!(ranking.best().map(|c| c.agent_name.as_str()), Some("novice"));
    }

    #[test]
    fn the_limit_cuts_the_list_and_exclusions_are_counted() {
        let t = task(json!({"requiresGpu": true}));
        let gpu: Vec<Agent> = (0..4)
            .map(|i| agent(&format!("gpu{i}"), json!({"constraints": {"canRunGpu": true}})))
            .collect();
        let cpu = agent("cpu", json!({}));
        let all = gpu.iter().chain(std::iter::once(&cpu)).map(|a| (a, vec![]));
        let ranking = rank(&t, all, Strategy::Balanced, 2, 0, CapacityLimits::default());
        assert_eq!(ranking.candidates.len(), 2);
        assert_eq!(ranking.eligible, 4);
        assert_eq!(ranking.excluded.no_gpu, 1);
        assert_eq!(ranking.excluded.total(), 1);
    }

    #[test]
    fn fastest_score_reaches_zero_after_a_day() {
        assert_eq!(fastest_score(0), 100.0);
        assert_eq!(fastest_score(-5), 100.0);
        assert_eq!(fastest_score(43_200_000), 50.0);
        assert_eq!(fastest_score(86_400_000), 0.0);
        assert_eq!(fastest_score(200_000_000), 0.0);
    }

    #[test]
    fn balanced_counts_queued_ready_work() {
        let t = task(json!({}));
        let a = agent("aa", json!({"maxMinutesPerDay": 400}));
        let b = agent("bb", json!({"maxMinutesPerDay": 400}));
        let limits = CapacityLimits::default();
        let queued = |id: &str, minutes: i32| {
            let mut q = busy(&a, id, minutes);
            q.status = TaskStatus::Ready;
            q
        };
        // Both idle: a tie, broken by name.
        let first = rank(&t, vec![(&a, vec![]), (&b, vec![])], Strategy::Balanced, 5, 0, limits);
        assert_eq!(first.best().map(|c| c.agent_name.as_str()), Some("aa"));
        // One task queued on aa (100 of 400 minutes): the next goes to bb, though aa has nothing in progress.
        let q1 = queued("q1", 100);
        let second = rank(
            &t,
            vec![(&a, vec![&q1]), (&b, vec![])],
            Strategy::Balanced,
            5,
            0,
            limits,
        );
        let scores: Vec<(&str, f64)> = second
            .candidates
            .iter()
            .map(|c| (c.agent_name.as_str(), c.score))
            .collect();
        // aa: 0.6 × 100 + 0.4 × 75 = 90; bb: 100.
        assert_eq!(scores, [("bb", 100.0), ("aa", 90.0)]);
        assert_eq!(
            second.candidates[1].utilization_percent, 0.0,
            "queued work is still not load"
        );
        assert!(second.candidates[1].can_accept_work);
        assert!(
            second.candidates[1]
                .reason
                .contains("75% free capacity (100 min queued)"),
            "{}",
            second.candidates[1].reason
        );
        // Queued and in-progress minutes weigh alike: 100 queued on aa against 100 in progress on bb is a tie.
        let running = busy(&b, "r", 100);
        let tie = rank(
            &t,
            vec![(&a, vec![&q1]), (&b, vec![&running])],
            Strategy::Balanced,
            5,
            0,
            limits,
        );
        let scores: Vec<f64> = tie.candidates.iter().map(|c| c.score).collect();
        assert_eq!(scores, [90.0, 90.0]);
        // Handing out four tasks in a row, each ranking seeing the assignments before it, alternates.
        let mut queues: Vec<Vec<Task>> = vec![vec![], vec![]];
        let mut picks = Vec::new();
        for i in 0..4 {
            let ranking = rank(
                &t,
                vec![(&a, queues[0].iter().collect()), (&b, queues[1].iter().collect())],
                Strategy::Balanced,
                5,
                0,
                limits,
            );
            let name = ranking.best().map(|c| c.agent_name.clone()).unwrap_or_default();
            let slot = usize::from(name == "bb");
            queues[slot].push(queued(&format!("n{i}"), 60));
            picks.push(name);
        }
        assert_eq!(picks, ["aa", "bb", "aa", "bb"]);
    }
}
