//! One run of a workload: the runtime embedded on its own database with a manual clock, the agents as
//! actors, and a coordinator that creates the work as it arrives and hands it out with auto-assign. Time
//! moves one simulated minute per step; every step ends with the runtime's tick (heartbeat monitor, SLO
//! monitor, message deadlines, escalation rules), as the timer would run it. A variant may switch the
//! escalation rules off (through the rules API) or the capacity checks (everything forced, as the admin).

use super::agent::{Brain, LiveMinute, Reconnect, SimAgent};
use super::judge;
use super::truth::Truth;
use super::workload::{Workload, CONCURRENT_TASKS};
use super::{SimError, Variant};
use actix::prelude::*;
use mission_control::actors::capacity::{AutoAssign, Fleet, SuitableAgents};
use mission_control::actors::directory::messages::{GetMessage, Register};
use mission_control::actors::escalation::{Feedback, ListEscalations, ListRules, Statistics, UpdateRule};
use mission_control::actors::task_board::messages::{
    AddDependency, Assign, CreateTask, GetTask, OpenTasks, SloOverview,
};
use mission_control::config::Config;
use mission_control::domain::agent::DEFAULT_MAX_MINUTES_PER_DAY;
use mission_control::domain::escalation::{Escalation, RulePatch};
use mission_control::domain::matching::{self, Strategy};
use mission_control::domain::query::{EscalationQuery, PageRequest};
use mission_control::domain::{Principal, Task, TaskStatus};
use mission_control::error::ErrorCode;
use mission_control::{Clock, Handles, ManualClock, Runtime};
use std::cell::RefCell;
use std::collections::HashSet;
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Instant;

const MINUTE_MS: i64 = 60_000;
/// Monday 2026-11-23, 09:00 UTC: every run starts its working day at the same instant.
pub const DAY_START_MS: i64 = 1_795_424_400_000;
/// A run with no task finished for this long is over: what is still open is stuck.
const GIVE_UP_AFTER_IDLE_MINUTES: i64 = 24 * 60;

/// Where and how to run.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// `None`: a fresh SQLite file in `data_dir`.
    pub database_url: Option<String>,
    pub data_dir: PathBuf,
    /// Stop the runtime and start a new one on the same database once this many tasks are done.
    pub restart_after_finished: Option<usize>,
    pub variant: Variant,
}

/// What a run observed, checked against the truth.
#[derive(Debug)]
pub struct RunOutcome {
    pub variant: Variant,
    pub truth: Truth,
    /// How soon a stuck or doomed task must get an escalation or be taken away to count as caught: two
    /// heartbeat timeouts plus the longest cooldown of the rules.
    pub recall_window_ms: i64,
    /// The simulated instant the run stopped.
    pub ended_at: i64,
    /// From the first arrival (minute 0) to the last completion.
    pub makespan_minutes: i64,
    pub restarted_at_minute: Option<i64>,
    pub escalations: Vec<Escalation>,
    /// Task ids the runtime no longer knows, or whose finished work it forgot.
    pub lost_tasks: Vec<String>,
    /// Tasks still open at the end.
    pub stuck_tasks: Vec<String>,
    pub delivered: usize,
    pub read: usize,
    pub acknowledged: usize,
    pub slo_missed: i64,
    pub slo_breaches_recorded: usize,
    pub agents_marked_offline: usize,
    pub attempts_failed: usize,
    pub wall_seconds: f64,
}

pub async fn run(workload: Workload, options: &RunOptions) -> Result<RunOutcome, SimError> {
    let started = Instant::now();
    let clock = ManualClock::new(DAY_START_MS);
    let url = match &options.database_url {
        Some(url) => url.clone(),
        None => options.data_dir.join("simulation.db").display().to_string(),
    };
    let mut config = Config::embedded(&url, &options.data_dir)?;
    config.clock = Arc::new(clock.clone());
    let mut runtime = Runtime::start(config.clone()).await?;
    let recall_window_ms = set_up_rules(&runtime.handles(), options.variant).await?;
    let truth = Rc::new(RefCell::new(Truth::new(
        workload,
        CONCURRENT_TASKS as usize,
        i64::from(DEFAULT_MAX_MINUTES_PER_DAY),
    )));
    let agents = register_team(&runtime.handles(), &truth, options.variant).await?;

    let total = truth.borrow().workload.tasks.len();
    let last_release = truth
        .borrow()
        .workload
        .tasks
        .iter()
        .map(|t| t.release_minute)
        .max()
        .unwrap_or(0);
    let (mut minute, mut last_finish_minute) = (0i64, 0i64);
    let mut restarted_at_minute = None;
    let (mut breaches, mut offline, mut failed) = (0usize, 0usize, 0usize);
    loop {
        let h = runtime.handles();
        clock.set_ms(DAY_START_MS + minute * MINUTE_MS);
        release_work(&h, &truth, minute).await?;
        if options.variant.capacity_checks() {
            assign_waiting(&h, &truth).await?;
        } else {
            assign_all_forced(&h, &truth).await?;
        }
        let finished_before = truth.borrow().finished();
        for agent in &agents {
            let lived = agent.send(LiveMinute).await??;
            failed += lived.failed;
        }
        let open = h.board.send(OpenTasks).await?;
        truth.borrow_mut().observe(&open, clock.now_ms());
        let tick = h.tick().await?;
        breaches += tick.slo_breaches.len();
        offline += tick.went_offline.len();

        let finished = truth.borrow().finished();
        if finished > finished_before {
            last_finish_minute = minute;
        }
        if finished == total || (minute > last_release && minute - last_finish_minute > GIVE_UP_AFTER_IDLE_MINUTES) {
            break;
        }
        if restarted_at_minute.is_none() && options.restart_after_finished.is_some_and(|at| finished >= at) {
            runtime = restart(runtime, config.clone(), &agents).await?;
            restarted_at_minute = Some(minute);
        }
        minute += 1;
    }

    let h = runtime.handles();
    let escalations = judge_escalations(&h, &truth).await?;
    let (lost_tasks, stuck_tasks) = check_tasks(&h, &truth).await?;
    let (delivered, read, acknowledged) = check_messages(&h, &truth).await?;
    let slo = h.board.send(SloOverview { limit: 0 }).await??;
    runtime.stop().await;
    // The agents' actors stop once their mailboxes drain; the truth they shared is copied out.
    drop(agents);
    let truth = truth.borrow().clone();
    Ok(RunOutcome {
        variant: options.variant,
        recall_window_ms,
        ended_at: DAY_START_MS + minute * MINUTE_MS,
        truth,
        makespan_minutes: last_finish_minute,
        restarted_at_minute,
        escalations,
        lost_tasks,
        stuck_tasks,
        delivered,
        read,
        acknowledged,
        slo_missed: slo.counts.missed,
        slo_breaches_recorded: breaches,
        agents_marked_offline: offline,
        attempts_failed: failed,
        wall_seconds: started.elapsed().as_secs_f64(),
    })
}

/// Reads the rules for the recall window, then, for the variant without escalation rules, disables every one
/// of them through the rules API (the built-in escalations of missed acknowledgements and SLO breaches are
/// not rules and stay on).
async fn set_up_rules(h: &Handles, variant: Variant) -> Result<i64, SimError> {
    let rules = h.escalation.send(ListRules).await??;
    let longest_cooldown = rules.iter().map(|r| r.cooldown_ms).max().unwrap_or(0);
    let heartbeat_timeout = i64::try_from(h.config.heartbeat_timeout.as_millis()).unwrap_or(i64::MAX);
    if !variant.rules_on() {
        for rule in rules {
            let patch = RulePatch {
                enabled: Some(false),
                ..RulePatch::default()
            };
            h.escalation
                .send(UpdateRule {
                    key: rule.id,
                    patch,
                    by: Principal::Admin,
                })
                .await??;
        }
    }
    Ok(2 * heartbeat_timeout + longest_cooldown)
}

async fn register_team(
    h: &Handles,
    truth: &Rc<RefCell<Truth>>,
    variant: Variant,
) -> Result<Vec<Addr<SimAgent>>, SimError> {
    let plans = truth.borrow().workload.agents.clone();
    let mut agents = Vec::with_capacity(plans.len());
    for (position, plan) in plans.into_iter().enumerate() {
        let draft = serde_json::from_value(serde_json::json!({
            "name": plan.name,
            "role": format!("{} engineer", plan.specializations[0]),
            "level": plan.level,
            "kind": "llm",
            "leadId": plan.lead,
            "specializations": plan.specializations,
            "maxConcurrentTasks": CONCURRENT_TASKS,
        }))?;
        let registered = h
            .directory
            .send(Register {
                draft,
                by: Principal::Admin,
            })
            .await??;
        let id = registered.agent.id;
        let lead_id = match &plan.lead {
            Some(lead) => truth.borrow().agent_ids.get(lead).cloned(),
            None => None,
        };
        truth.borrow_mut().record_agent(position, &plan.name, &id);
        let mut brain = Brain::new(id, position, lead_id, plan.level == "lead", plan.crashes_after_minutes);
        if !variant.capacity_checks() {
            brain = brain.without_capacity_checks();
        }
        agents.push(SimAgent::new(brain, h.clone(), truth.clone()).start());
    }
    Ok(agents)
}

/// Creates the tasks that arrive this minute, with their dependencies.
async fn release_work(h: &Handles, truth: &Rc<RefCell<Truth>>, minute: i64) -> Result<(), SimError> {
    let arriving: Vec<_> = truth
        .borrow()
        .workload
        .tasks
        .iter()
        .filter(|t| t.release_minute == minute)
        .cloned()
        .collect();
    for plan in arriving {
        let draft = serde_json::from_value(serde_json::json!({
            "title": plan.title,
            "status": "ready",
            "priority": plan.priority,
            "tags": [plan.skill],
            "slaTier": plan.sla_tier,
            "estimatedMinutes": plan.estimate_minutes,
            "requirements": { "capabilities": [plan.skill] },
        }))?;
        let task = h
            .board
            .send(CreateTask {
                draft,
                by: Principal::Admin,
            })
            .await??;
        truth
            .borrow_mut()
            .record_created(plan.index, &task.id, h.clock.now_ms(), task.slo_deadline_at);
        for blocker in &plan.blockers {
            let blocker_id = truth.borrow().task_ids[*blocker]
                .clone()
                .ok_or_else(|| SimError(format!("blocker {blocker} of task {} not created", plan.index)))?;
            h.board
                .send(AddDependency {
                    id: task.id.clone(),
                    blocker_id,
                    by: Principal::Admin,
                })
                .await??;
        }
    }
    Ok(())
}

/// The ready tasks nobody holds, the most urgent first (plan order within a priority).
async fn waiting_tasks(h: &Handles, truth: &Rc<RefCell<Truth>>) -> Result<Vec<Task>, SimError> {
    let mut waiting: Vec<Task> = h
        .board
        .send(OpenTasks)
        .await?
        .into_iter()
        .filter(|t| t.status == TaskStatus::Ready && t.assignee_id.is_none())
        .collect();
    let order = |t: &Task| truth.borrow().index_of(&t.id).unwrap_or(usize::MAX);
    waiting.sort_by_key(|t| (t.priority, order(t)));
    Ok(waiting)
}

/// The coordinator hands out the ready tasks, the most urgent first, with auto-assign, each to an agent not
/// given one yet this minute: it asks the ranking first and passes over a task whose best candidate already got
/// one, because the ranking sees an assignment only once its agent starts on it (or counts queued work) — two
/// in a row could otherwise both go to the same idle agent while another waits.
async fn assign_waiting(h: &Handles, truth: &Rc<RefCell<Truth>>) -> Result<(), SimError> {
    let mut given: HashSet<String> = HashSet::new();
    for task in &waiting_tasks(h, truth).await? {
        let ranking = h
            .capacity
            .send(SuitableAgents {
                task_id: task.id.clone(),
                strategy: Strategy::Balanced,
                limit: matching::MAX_LIMIT,
            })
            .await??;
        match ranking.best() {
            // Nobody free for this one (or only agents who failed it): the next may still find someone.
            None => continue,
            Some(best) if given.contains(&best.agent_id) => continue,
            Some(_) => {}
        }
        let assign = AutoAssign {
            task_id: task.id.clone(),
            strategy: Strategy::Balanced,
            by: Principal::Admin,
        };
        match h.capacity.send(assign).await? {
            Ok(assigned) => {
                given.insert(assigned.chosen.agent_id);
            }
            Err(e) if matches!(e.code, ErrorCode::NoSuitableAgent | ErrorCode::AgentAtCapacity) => break,
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// Without capacity checks the coordinator hands out every waiting task at once, each to the agent the
/// balanced ranking scores highest whether or not it can accept work, and forces the assignment as the admin.
async fn assign_all_forced(h: &Handles, truth: &Rc<RefCell<Truth>>) -> Result<(), SimError> {
    for task in &waiting_tasks(h, truth).await? {
        let ranking = h
            .capacity
            .send(SuitableAgents {
                task_id: task.id.clone(),
                strategy: Strategy::Balanced,
                limit: matching::MAX_LIMIT,
            })
            .await??;
        let best = ranking
            .candidates
            .iter()
            .min_by(|a, b| b.score.total_cmp(&a.score).then(a.rank.cmp(&b.rank)));
        let Some(best) = best else { continue };
        let assign = Assign {
            id: task.id.clone(),
            agent: Some(best.agent_id.clone()),
            force: true,
            by: Principal::Admin,
        };
        h.board.send(assign).await??;
    }
    Ok(())
}

/// Stops the runtime as a process exit would (the journal finishes its queue), starts a new one on the same
/// database, and points the agents at it. Each actor is asked something first, so that every event already
/// published has been handled before the stop.
async fn restart(runtime: Runtime, config: Config, agents: &[Addr<SimAgent>]) -> Result<Runtime, SimError> {
    let h = runtime.handles();
    h.capacity.send(Fleet).await?;
    h.escalation.send(Statistics).await??;
    h.board.send(OpenTasks).await?;
    drop(h);
    runtime.stop().await;
    let runtime = Runtime::start(config).await?;
    for agent in agents {
        agent.send(Reconnect(runtime.handles())).await?;
    }
    Ok(runtime)
}

/// Every escalation the runtime recorded, each rated against the truth (and the rating sent back as
/// feedback, so the runtime's own statistics show the accuracy too).
async fn judge_escalations(h: &Handles, truth: &Rc<RefCell<Truth>>) -> Result<Vec<Escalation>, SimError> {
    let mut all = Vec::new();
    let mut cursor = None;
    loop {
        let query = EscalationQuery {
            task_id: None,
            rule_id: None,
            open: None,
            since: None,
            page: PageRequest { cursor, limit: 100 },
        };
        let page = h.escalation.send(ListEscalations { query }).await??;
        all.extend(page.items);
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    all.sort_by(|a, b| a.triggered_at.cmp(&b.triggered_at).then(a.id.cmp(&b.id)));
    for escalation in &mut all {
        let useful = judge::verdict(&truth.borrow(), escalation).is_some();
        let rated = h
            .escalation
            .send(Feedback {
                id: escalation.id.clone(),
                useful,
                by: Principal::Admin,
            })
            .await??;
        *escalation = rated;
    }
    Ok(all)
}

async fn check_tasks(h: &Handles, truth: &Rc<RefCell<Truth>>) -> Result<(Vec<String>, Vec<String>), SimError> {
    let (mut lost, mut stuck) = (Vec::new(), Vec::new());
    let planned: Vec<(Option<String>, bool)> = {
        let truth = truth.borrow();
        (0..truth.workload.tasks.len())
            .map(|i| (truth.task_ids[i].clone(), truth.finished_at[i].is_some()))
            .collect()
    };
    for (index, (id, finished)) in planned.into_iter().enumerate() {
        let Some(id) = id else {
            stuck.push(format!("task #{index} (never created)"));
            continue;
        };
        match h.board.send(GetTask { id: id.clone() }).await? {
            Err(e) if e.code == ErrorCode::TaskNotFound => lost.push(id),
            Err(e) => return Err(e.into()),
            Ok(detail) if finished && detail.task.status != TaskStatus::Done => lost.push(id),
            Ok(detail) if detail.task.status != TaskStatus::Done => stuck.push(id),
            Ok(_) => {}
        }
    }
    Ok((lost, stuck))
}

/// Every message an agent sent must be in its recipient's mailbox: delivered, then read, and acknowledged
/// when it asked for that.
async fn check_messages(h: &Handles, truth: &Rc<RefCell<Truth>>) -> Result<(usize, usize, usize), SimError> {
    let sent = truth.borrow().messages.clone();
    let (mut delivered, mut read, mut acknowledged) = (0, 0, 0);
    for message in sent {
        let get = GetMessage {
            id: message.id.clone(),
            by: Principal::Admin,
        };
        match h.directory.send(get).await? {
            Ok(stored) if stored.to_agent_id == message.to_agent_id => {
                delivered += 1;
                read += usize::from(stored.read_at.is_some());
                acknowledged += usize::from(message.requires_ack && stored.acknowledged_at.is_some());
            }
            Ok(_) => {}
            Err(e) if e.code == ErrorCode::MessageNotFound => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok((delivered, read, acknowledged))
}
