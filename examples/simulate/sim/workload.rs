//! The simulated team and its work, generated from the seed alone: who the agents are, which tasks arrive
//! when, how they depend on each other, and the ground truth the runtime never sees (how long each attempt
//! really takes and whether it fails, which agents are slower than their estimates, which tasks are beyond
//! which agents).

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Skills of the team; every task needs one of them.
pub const SKILLS: [&str; 6] = ["rust", "frontend", "database", "devops", "testing", "docs"];

const NAMES: [&str; 12] = [
    "ada", "grace", "linus", "barbara", "ken", "margaret", "dennis", "frances", "edsger", "radia", "alan", "hedy",
];

/// How many tasks an agent works on at once (its `maxConcurrentTasks`): one, so that an agent busy with a
/// task cannot be given another, and the coordinator's auto-assign spreads the work over idle agents.
pub const CONCURRENT_TASKS: i32 = 1;

#[derive(Debug, Clone)]
pub struct AgentPlan {
    pub name: String,
    pub level: &'static str,
    pub specializations: Vec<String>,
    /// The lead every other agent reports to (the first agent leads the team).
    pub lead: Option<String>,
    /// An offline agent works normally until it has spent this many minutes on its first task, then goes
    /// silent for good: a crashed process that still holds its work.
    pub crashes_after_minutes: Option<i64>,
    /// Real work takes this many times what the task's own truth says (1.0, or 1.3–1.7 for an agent slower
    /// than its estimates). The runtime never sees it.
    pub slowness: f64,
}

#[derive(Debug, Clone)]
pub struct TaskPlan {
    /// Position in the workload: also the order in which the coordinator creates and assigns.
    pub index: usize,
    pub title: String,
    pub skill: &'static str,
    pub priority: &'static str,
    pub sla_tier: &'static str,
    pub estimate_minutes: i64,
    /// Indices of the tasks this one waits for (always earlier tasks of the same group: a DAG).
    pub blockers: Vec<usize>,
    /// Minute of the simulated day at which the coordinator creates the task.
    pub release_minute: i64,
    /// The ground truth: how long each attempt really takes, and whether it fails at the end.
    pub true_minutes: i64,
    pub fails: Vec<bool>,
    /// Agents (by position in the team) who can never finish this task: every attempt of theirs fails,
    /// partway through. Never every agent with the skill who stays online.
    pub beyond: Vec<usize>,
}

impl TaskPlan {
    /// Whether attempt `n` (0-based) fails; attempts past the rolled ones succeed.
    pub fn attempt_fails(&self, n: usize) -> bool {
        self.fails.get(n).copied().unwrap_or(false)
    }

    pub fn is_beyond(&self, agent: usize) -> bool {
        self.beyond.contains(&agent)
    }
}

#[derive(Debug, Clone)]
pub struct Workload {
    pub agents: Vec<AgentPlan>,
    pub tasks: Vec<TaskPlan>,
}

/// The shape of a workload.
#[derive(Debug, Clone, Copy)]
pub struct Shape {
    pub agents: usize,
    pub tasks: usize,
    pub seed: u64,
    pub failure_rate: f64,
    pub offline_agents: usize,
}

/// Tasks arrive in groups (a feature's worth of work), spaced so that the working agents are busy about this
/// share of the time: a team with slack, as a team that is to meet its SLOs has to be.
const TARGET_UTILIZATION: f64 = 0.7;
/// The average work in a group: 5.5 tasks of 55 minutes.
const AVERAGE_GROUP_MINUTES: f64 = 5.5 * 55.0;
const MAX_ROLLED_ATTEMPTS: usize = 8;
/// Chance that a specialist is slower than the estimates (1.3–1.7 times the real work).
const SLOW_AGENT_CHANCE: f64 = 0.25;
/// Chance that a task is beyond one of the agents who have its skill.
const HARD_TASK_CHANCE: f64 = 0.1;

impl Workload {
    pub fn generate(shape: Shape) -> Workload {
        let mut rng = StdRng::seed_from_u64(shape.seed);
        let agents = team(shape, &mut rng);
        let tasks = tasks(shape, &agents, &mut rng);
        Workload { agents, tasks }
    }

    /// Real minutes an attempt at task `task` takes agent `agent` (a position in the team): the task's true
    /// duration at the agent's pace, or, for a task beyond the agent, the half of it after which the agent
    /// gives up.
    pub fn attempt_minutes(&self, task: usize, agent: usize) -> i64 {
        let plan = &self.tasks[task];
        let pace = self.agents.get(agent).map_or(1.0, |a| a.slowness);
        let minutes = (plan.true_minutes as f64 * pace).ceil() as i64;
        if plan.is_beyond(agent) {
            (minutes / 2).max(5)
        } else {
            minutes
        }
    }

    /// The same work for one agent who has every skill: the serial baseline.
    pub fn serial(&self) -> Workload {
        Workload {
            agents: vec![AgentPlan {
                name: "solo".into(),
                level: "specialist",
                specializations: SKILLS.iter().map(|s| s.to_string()).collect(),
                lead: None,
                crashes_after_minutes: None,
                slowness: 1.0,
            }],
            tasks: self
                .tasks
                .iter()
                .map(|t| TaskPlan {
                    beyond: Vec::new(),
                    ..t.clone()
                })
                .collect(),
        }
    }
}

fn agent_name(i: usize) -> String {
    match NAMES.get(i) {
        Some(name) => name.to_string(),
        None => format!("{}{}", NAMES[i % NAMES.len()], i / NAMES.len() + 1),
    }
}

fn team(shape: Shape, rng: &mut StdRng) -> Vec<AgentPlan> {
    let count = shape.agents.max(1);
    let lead = agent_name(0);
    // The offline agents are the last specialists, never the lead: someone must receive escalations.
    let offline = shape.offline_agents.min(count.saturating_sub(1));
    (0..count)
        .map(|i| {
            // Two skills each, rotating so that every skill is covered by at least one agent when there are
            // three or more; the lead knows three.
            let first = i % SKILLS.len();
            let mut specializations = vec![
                SKILLS[first].to_string(),
                SKILLS[(first + 1) % SKILLS.len()].to_string(),
            ];
            if i == 0 {
                specializations.push(SKILLS[(first + 3) % SKILLS.len()].to_string());
            }
            let slow = rng.random_bool(SLOW_AGENT_CHANCE) && i > 0;
            let slowness = if slow {
                f64::from(rng.random_range(13..=17u8)) / 10.0
            } else {
                1.0
            };
            AgentPlan {
                name: agent_name(i),
                level: if i == 0 { "lead" } else { "specialist" },
                specializations,
                lead: (i > 0).then(|| lead.clone()),
                crashes_after_minutes: (i >= count - offline && i > 0).then(|| rng.random_range(10..=30)),
                slowness,
            }
        })
        .collect()
}

fn group_spacing_minutes(shape: Shape) -> i64 {
    let working = shape.agents.saturating_sub(shape.offline_agents).max(1) as f64;
    (AVERAGE_GROUP_MINUTES / (working * TARGET_UTILIZATION)).ceil() as i64
}

fn tasks(shape: Shape, team: &[AgentPlan], rng: &mut StdRng) -> Vec<TaskPlan> {
    let spacing = group_spacing_minutes(shape);
    let mut plans: Vec<TaskPlan> = Vec::with_capacity(shape.tasks);
    let mut group = 0i64;
    while plans.len() < shape.tasks {
        let size = rng.random_range(3..=8).min(shape.tasks - plans.len());
        let start = plans.len();
        for position in 0..size {
            let index = start + position;
            let blockers = if position == 0 {
                Vec::new()
            } else {
                // A mix of fresh starts, chains and fan-ins, always on earlier tasks of the group.
                match rng.random_range(0..10) {
                    0..=2 => Vec::new(),
                    3..=7 => vec![start + rng.random_range(0..position)],
                    _ => {
                        let a = start + rng.random_range(0..position);
                        let b = start + rng.random_range(0..position);
                        if a == b {
                            vec![a]
                        } else {
                            vec![a.min(b), a.max(b)]
                        }
                    }
                }
            };
            let depth = blockers.iter().map(|&b| depth_of(&plans, b) + 1).max().unwrap_or(0);
            let estimate = 5 * rng.random_range(4..=18); // 20–90 min
            let skill = SKILLS[rng.random_range(0..SKILLS.len())];
            let priority = match rng.random_range(0..20) {
                0..=1 => "P0",
                2..=6 => "P1",
                7..=15 => "P2",
                _ => "P3",
            };
            // A planner gives work deep in a chain more time: it cannot start before its blockers finish.
            let sla_tier = match (depth, priority) {
                (0, "P0") if estimate <= 30 => "critical",
                (0..=1, _) => "urgent",
                _ => "normal",
            };
            // Real work takes 70–130 % of the estimate.
            let true_minutes = (estimate * rng.random_range(70..=130) / 100).max(5);
            let fails = (0..MAX_ROLLED_ATTEMPTS)
                .map(|_| rng.random_bool(shape.failure_rate.clamp(0.0, 1.0)))
                .collect();
            let beyond = if rng.random_bool(HARD_TASK_CHANCE) {
                beyond_one(team, skill, rng)
            } else {
                Vec::new()
            };
            plans.push(TaskPlan {
                index,
                title: format!("{} task {} of feature {}", capitalised(skill), position + 1, group + 1),
                skill,
                priority,
                sla_tier,
                estimate_minutes: estimate,
                blockers,
                release_minute: group * spacing,
                true_minutes,
                fails,
                beyond,
            });
        }
        group += 1;
    }
    plans
}

/// One agent with the skill for whom the task is too hard, chosen only when another agent with the skill
/// that never crashes remains to finish it.
fn beyond_one(team: &[AgentPlan], skill: &str, rng: &mut StdRng) -> Vec<usize> {
    let skilled: Vec<usize> = (0..team.len())
        .filter(|&i| team[i].specializations.iter().any(|s| s == skill))
        .collect();
    if skilled.is_empty() {
        return Vec::new();
    }
    let chosen = skilled[rng.random_range(0..skilled.len())];
    let others_stay = skilled
        .iter()
        .any(|&i| i != chosen && team[i].crashes_after_minutes.is_none());
    if others_stay {
        vec![chosen]
    } else {
        Vec::new()
    }
}

fn depth_of(plans: &[TaskPlan], index: usize) -> usize {
    plans[index]
        .blockers
        .iter()
        .map(|&b| depth_of(plans, b) + 1)
        .max()
        .unwrap_or(0)
}

fn capitalised(word: &str) -> String {
    let mut chars = word.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}
