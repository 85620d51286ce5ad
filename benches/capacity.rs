//! Criterion benchmarks of capacity matching and the SLO sweep, at fleet scale: by default 1 000 agents
//! carrying 10 000 open tasks.
//!
//! 1. `rules`: the pure rules, no actors. `matching::rank` of one task among every agent (each with its open
//!    tasks, grouped per agent once, outside the timed part, as the `CapacityRegistry` keeps them), for each
//!    strategy; the same balanced ranking over the registry's own storage (hash maps by id, each agent's tasks
//!    looked up on every call), which is what `SuitableAgents` pays; and the SLO sweep: `slo::reading` and
//!    `slo::breaches_due` for every open task, some of them past their deadline.
//! 2. `runtime`: the real actors on SQLite in a temporary folder (`Config::embedded`: system clock, no
//!    timer), seeded through the actors (agents registered, tasks created with an SLO and an assignee, some
//!    moved to `in_progress` or `blocked`; the seeding is timed once and reported, never measured by
//!    criterion). Measured: `SuitableAgents` (balanced) to the `CapacityRegistry` — the round trip including
//!    the task fetch from the board; `escalation::Tick` — the SLO monitor over every open task when nothing
//!    is due (every deadline is in the future, so nothing is written); the whole `Handles::tick` (heartbeat
//!    monitor, message expiry and deadlines, SLO monitor); and, to attribute the tick's cost, the board's
//!    `OpenTasks` snapshot that the SLO monitor starts from.
//!
//! Each part also times one fixed run outside criterion, and a summary (time per operation, agents ranked or
//! tasks swept per second) is printed at the end. The fixed runs ignore criterion's name filter. Sizes come
//! from the environment: `MC_BENCH_AGENTS` (default 1000) and `MC_BENCH_TASKS` (default 10000); under
//! `cargo test --benches` (no `--bench` argument) the defaults drop to 100 and 1000 so the smoke run is quick.

mod support;

use criterion::{criterion_group, criterion_main, BenchmarkGroup, Criterion};
use futures_util::future::join_all;
use mission_control::actors::capacity::{Fleet, SuitableAgents};
use mission_control::actors::directory::messages::{Register, Update};
use mission_control::actors::escalation;
use mission_control::actors::task_board::messages::{CreateTask, OpenTasks, Transition};
use mission_control::config::Config;
use mission_control::domain::agent::{self, AgentDraft, AgentPatch};
use mission_control::domain::capacity::CapacityLimits;
use mission_control::domain::matching::{self, Strategy};
use mission_control::domain::slo::{self, BreachKind, SloStatus, SloThresholds};
use mission_control::domain::task::{self, TaskDraft};
use mission_control::domain::{Agent, AgentStatus, Principal, SlaTier, Task, TaskStatus};
use mission_control::{Handles, Runtime};
use serde_json::{json, Value};
use std::collections::{HashMap, HashSet};
use std::hint::black_box;
use std::time::{Duration, Instant};
use support::{fixed_runs, logical_cores, print_summary, rate_line, record, sizes};

/// The pure rules' "now": a fixed instant, so the world is the same on every run.
const NOW: i64 = 1_750_000_000_000;
const MINUTE: i64 = 60_000;
const HOUR: i64 = 60 * MINUTE;
/// Candidates kept per ranking, as the API's default.
const LIMIT: usize = matching::DEFAULT_LIMIT;
/// Requests in flight at once while seeding through the actors.
const SEED_BATCH: usize = 250;

const SKILLS: [&str; 12] = [
    "rust",
    "python",
    "pytorch",
    "sql",
    "typescript",
    "react",
    "go",
    "kubernetes",
    "terraform",
    "ml",
    "docs",
    "security",
];
const ROLES: [&str; 5] = ["backend", "ml", "frontend", "infra", "docs"];

fn configure(group: &mut BenchmarkGroup<'_, criterion::measurement::WallTime>, measure: u64) {
    group.sample_size(10);
    group.warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(measure));
}

// ---- The world: the same agents and tasks for the pure rules and the runtime ------------------------------

/// splitmix64: a fixed, dependency-free sequence, so every run builds the same world.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len() as u64) as usize]
    }

    /// `count` distinct skills.
    fn skills(&mut self, count: usize) -> Vec<&'static str> {
        let mut out: Vec<&'static str> = Vec::with_capacity(count);
        while out.len() < count.min(SKILLS.len()) {
            let skill = self.pick(&SKILLS);
            if !out.contains(&skill) {
                out.push(skill);
            }
        }
        out
    }
}

struct AgentPlan {
    /// The registration body, as `POST /api/agents` takes it.
    draft: Value,
    /// `idle`, or offline / suspended for a few, which the hard filters leave out.
    status: AgentStatus,
}

struct TaskPlan {
    /// Index of the assignee in the agents.
    agent: usize,
    /// `ready`, `in_progress` or `blocked`.
    status: TaskStatus,
    /// The creation body without its assignee.
    draft: Value,
    /// The SLO in effect (`sloMs`, else the tier's); `None` for the backlog tier.
    slo_ms: Option<i64>,
    /// Pure rules only: how old the task is, as a percentage of its SLO (over 100 is past the deadline).
    age_percent: i64,
    /// Pure rules only: minutes since the task entered its status.
    in_status_minutes: i64,
}

impl TaskPlan {
    fn draft_for(&self, assignee: &str) -> Value {
        let mut draft = self.draft.clone();
        draft["assigneeId"] = json!(assignee);
        draft
    }
}

struct World {
    agents: Vec<AgentPlan>,
    tasks: Vec<TaskPlan>,
}

impl World {
    fn generate(agents: usize, tasks: usize) -> World {
        let mut rng = Rng(0x5EED_CA9A_C17F);
        let agents = (0..agents)
            .map(|i| {
                let skill_count = 1 + rng.below(4) as usize;
                let skills = rng.skills(skill_count);
                let level = match rng.below(100) {
                    0..=4 => "lead",
                    5..=14 => "intern",
                    _ => "specialist",
                };
                let draft = json!({
                    "name": format!("agent-{i:05}"),
                    "role": rng.pick(&ROLES),
                    "level": level,
                    "specializations": skills,
                    "constraints": {
                        "hasInternet": !rng.chance(5),
                        "canRunGpu": rng.chance(20),
                        "maxMemoryMb": rng.pick(&[2048, 4096, 8192, 16384, 32768]),
                        "preferAsync": rng.chance(50),
                    },
                    "maxConcurrentTasks": 2 + rng.below(7),
                    "maxMinutesPerDay": rng.pick(&[240, 360, 480, 720, 960]),
                });
                let status = match rng.below(100) {
                    0 => AgentStatus::Suspended,
                    1..=2 => AgentStatus::Offline,
                    _ => AgentStatus::Idle,
                };
                AgentPlan { draft, status }
            })
            .collect::<Vec<_>>();
        let tasks = (0..tasks)
            .map(|i| {
                let agent = rng.below(agents.len() as u64) as usize;
                let priority = match rng.below(100) {
                    0..=4 => "P0",
                    5..=24 => "P1",
                    25..=74 => "P2",
                    _ => "P3",
                };
                let mut draft = json!({
                    "title": format!("bench task {i}"),
                    "priority": priority,
                    "status": "ready",
                    "tags": ["bench"],
                });
                let slo_ms = match rng.below(100) {
                    0..=29 => Some(tier(&mut draft, SlaTier::Normal)),
                    30..=49 => Some(tier(&mut draft, SlaTier::Urgent)),
                    50..=59 => Some(tier(&mut draft, SlaTier::Critical)),
                    60..=89 => {
                        let ms = rng.pick(&[2 * HOUR, 8 * HOUR, 48 * HOUR]);
                        draft["sloMs"] = json!(ms);
                        Some(ms)
                    }
                    _ => {
                        draft["slaTier"] = json!("backlog");
                        None
                    }
                };
                let estimate = (!rng.chance(15)).then(|| rng.pick(&[15, 30, 60, 90, 120, 240, 480]));
                if let Some(minutes) = estimate {
                    draft["estimatedMinutes"] = json!(minutes);
                }
                let mut requirements = serde_json::Map::new();
                if rng.chance(60) {
                    let count = 1 + rng.below(3) as usize;
                    requirements.insert("capabilities".into(), json!(rng.skills(count)));
                }
                if rng.chance(10) {
                    requirements.insert("requiresGpu".into(), json!(true));
                }
                if rng.chance(10) {
                    requirements.insert("requiresInternet".into(), json!(true));
                }
                if rng.chance(20) {
                    requirements.insert("minMemoryMb".into(), json!(rng.pick(&[8192, 16384])));
                }
                draft["requirements"] = Value::Object(requirements);
                let status = match rng.below(100) {
                    0..=24 => TaskStatus::InProgress,
                    25..=29 => TaskStatus::Blocked,
                    _ => TaskStatus::Ready,
                };
                let typical = i64::from(estimate.unwrap_or(240));
                TaskPlan {
                    agent,
                    status,
                    draft,
                    slo_ms,
                    age_percent: rng.below(130) as i64,
                    in_status_minutes: rng.below(typical as u64 + 60) as i64,
                }
            })
            .collect();
        World { agents, tasks }
    }

    fn count(&self, status: TaskStatus) -> usize {
        self.tasks.iter().filter(|t| t.status == status).count()
    }
}

fn tier(draft: &mut Value, tier: SlaTier) -> i64 {
    draft["slaTier"] = json!(tier.as_str());
    tier.duration_ms().unwrap_or(0)
}

// ---- 1. The pure rules ---------------------------------------------------------------------------------------

/// The world as domain values at [`NOW`]: the tasks created `age_percent` of their SLO ago (a day ago without
/// one), the ones in progress or blocked moved there `in_status_minutes` ago (never before creation).
fn pure_world(world: &World) -> (Vec<Agent>, Vec<Task>) {
    let agents: Vec<Agent> = world
        .agents
        .iter()
        .enumerate()
        .map(|(i, plan)| {
            let draft: AgentDraft = serde_json::from_value(plan.draft.clone()).expect("valid agent draft");
            let mut agent = agent::register(draft, format!("a{i:05}"), NOW - 30 * 24 * HOUR).expect("valid agent");
            agent.status = plan.status;
            agent
        })
        .collect();
    let tasks = world
        .tasks
        .iter()
        .enumerate()
        .map(|(i, plan)| {
            let draft: TaskDraft =
                serde_json::from_value(plan.draft_for(&agents[plan.agent].id)).expect("valid task draft");
            let age = plan.slo_ms.unwrap_or(24 * HOUR) * plan.age_percent / 100;
            let created = task::create(draft, format!("t{i:06}"), "admin".into(), NOW - age).expect("valid task");
            if plan.status == TaskStatus::Ready {
                created
            } else {
                let since = (NOW - plan.in_status_minutes * MINUTE).max(created.created_at);
                task::moved(&created, plan.status, since)
            }
        })
        .collect();
    (agents, tasks)
}

/// Every agent with its open tasks, in agent order.
fn group_by_agent<'a>(agents: &'a [Agent], tasks: &'a [Task]) -> Vec<(&'a Agent, Vec<&'a Task>)> {
    let mut by_agent: HashMap<&str, Vec<&Task>> = HashMap::new();
    for t in tasks {
        if let Some(assignee) = &t.assignee_id {
            by_agent.entry(assignee.as_str()).or_default().push(t);
        }
    }
    agents
        .iter()
        .map(|a| (a, by_agent.remove(a.id.as_str()).unwrap_or_default()))
        .collect()
}

/// Ranks every agent for `task`. `rank` takes each agent's tasks by value, so the per-agent lists are
/// copied on every call, as the registry builds them on every call.
fn rank_all(grouped: &[(&Agent, Vec<&Task>)], task: &Task, strategy: Strategy) -> matching::Ranking {
    let agents = grouped.iter().map(|(a, tasks)| (*a, tasks.clone()));
    matching::rank(task, agents, strategy, LIMIT, NOW, CapacityLimits::default())
}

/// The world stored as the `CapacityRegistry` stores it: agents and open tasks in maps by id, and each
/// agent's open task ids in a set.
struct RegistryShaped {
    agents: HashMap<String, Agent>,
    tasks: HashMap<String, Task>,
    by_agent: HashMap<String, HashSet<String>>,
}

impl RegistryShaped {
    fn new(agents: &[Agent], tasks: &[Task]) -> RegistryShaped {
        let mut by_agent: HashMap<String, HashSet<String>> = HashMap::new();
        for t in tasks {
            if let Some(assignee) = &t.assignee_id {
                by_agent.entry(assignee.clone()).or_default().insert(t.id.clone());
            }
        }
        RegistryShaped {
            agents: agents.iter().map(|a| (a.id.clone(), a.clone())).collect(),
            tasks: tasks.iter().map(|t| (t.id.clone(), t.clone())).collect(),
            by_agent,
        }
    }

    /// As `CapacityRegistry::rank`: each agent's tasks looked up by id on every call.
    fn rank(&self, task: &Task, strategy: Strategy) -> matching::Ranking {
        let agents = self.agents.values().map(|a| {
            let tasks: Vec<&Task> = self
                .by_agent
                .get(&a.id)
                .into_iter()
                .flatten()
                .filter_map(|id| self.tasks.get(id))
                .collect();
            (a, tasks)
        });
        matching::rank(task, agents, strategy, LIMIT, NOW, CapacityLimits::default())
    }
}

/// One SLO sweep over the tasks: each one's reading, and the breaches due that are not yet recorded.
/// Returns the count of each status (by urgency) and the number of breaches due.
fn slo_sweep(tasks: &[Task], recorded: &[Vec<BreachKind>]) -> ([usize; 7], usize) {
    let thresholds = SloThresholds::default();
    let mut counts = [0usize; 7];
    let mut due = 0;
    for (t, recorded) in tasks.iter().zip(recorded) {
        let reading = slo::reading(t, NOW, thresholds);
        counts[usize::from(reading.status.urgency())] += 1;
        due += slo::breaches_due(t, NOW, recorded).len();
    }
    (counts, due)
}

fn rules(c: &mut Criterion) {
    let (agent_count, task_count) = sizes();
    let world = World::generate(agent_count, task_count);
    let (agents, tasks) = pure_world(&world);
    let grouped = group_by_agent(&agents, &tasks);
    println!(
        "capacity world: {} agents ({} GPU, {} offline, {} suspended), {} open tasks ({} in progress, {} ready, \
         {} blocked)",
        agents.len(),
        agents.iter().filter(|a| a.constraints.can_run_gpu).count(),
        agents.iter().filter(|a| a.status == AgentStatus::Offline).count(),
        agents.iter().filter(|a| a.status == AgentStatus::Suspended).count(),
        tasks.len(),
        world.count(TaskStatus::InProgress),
        world.count(TaskStatus::Ready),
        world.count(TaskStatus::Blocked),
    );

    // Sanity: every agent is either scored or counted as excluded, and the limit holds.
    for strategy in [Strategy::BestFit, Strategy::Balanced, Strategy::Fastest] {
        for t in tasks.iter().take(50) {
            let ranking = rank_all(&grouped, t, strategy);
            assert_eq!(ranking.eligible + ranking.excluded.total(), agents.len());
            assert_eq!(ranking.candidates.len(), ranking.eligible.min(LIMIT));
        }
    }
    let sample = rank_all(&grouped, &tasks[0], Strategy::Balanced);
    println!(
        "capacity world: ranking '{}' (balanced): {} eligible, {} excluded, best {:?}",
        tasks[0].title,
        sample.eligible,
        sample.excluded.total(),
        sample.best().map(|c| (&c.agent_name, c.score, &c.reason)),
    );

    // Fixed runs: each ranks a different task, cycling through the open tasks.
    let runs = fixed_runs(200);
    for strategy in [Strategy::BestFit, Strategy::Balanced, Strategy::Fastest] {
        let start = Instant::now();
        for t in tasks.iter().cycle().take(runs) {
            black_box(rank_all(&grouped, t, strategy));
        }
        record(rate_line(
            "capacity",
            &format!("rules: rank {agent_count} agents / {task_count} tasks ({strategy})"),
            runs,
            start.elapsed(),
            agent_count,
            "agents ranked",
        ));
    }

    // The same ranking with the registry's storage: per-call lookups in hash maps instead of ready lists.
    let registry = RegistryShaped::new(&agents, &tasks);
    let check = registry.rank(&tasks[0], Strategy::Balanced);
    assert_eq!(check.candidates, sample.candidates, "the same ranking either way");
    let start = Instant::now();
    for t in tasks.iter().cycle().take(runs) {
        black_box(registry.rank(t, Strategy::Balanced));
    }
    record(rate_line(
        "capacity",
        &format!("rules: rank {agent_count} agents / {task_count} tasks (balanced, registry maps)"),
        runs,
        start.elapsed(),
        agent_count,
        "agents ranked",
    ));

    let mut group = c.benchmark_group("rules");
    configure(&mut group, 3);
    for strategy in [Strategy::BestFit, Strategy::Balanced, Strategy::Fastest] {
        let name = format!("matching::rank/{strategy} ({agent_count} agents, {task_count} open tasks)");
        group.bench_function(name, |b| {
            let mut probes = tasks.iter().cycle();
            b.iter(|| {
                let t = probes.next().expect("a cycle never ends");
                black_box(rank_all(&grouped, t, strategy))
            })
        });
    }
    let name = format!("matching::rank/balanced, registry maps ({agent_count} agents, {task_count} open tasks)");
    group.bench_function(name, |b| {
        let mut probes = tasks.iter().cycle();
        b.iter(|| {
            let t = probes.next().expect("a cycle never ends");
            black_box(registry.rank(t, Strategy::Balanced))
        })
    });

    // The SLO sweep: half the tasks past their deadline already have `deadline_missed` recorded, as after an
    // earlier tick.
    let recorded: Vec<Vec<BreachKind>> = tasks
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let past = t.slo_deadline_at.is_some_and(|d| NOW >= d);
            if past && i % 2 == 0 {
                vec![BreachKind::DeadlineMissed]
            } else {
                Vec::new()
            }
        })
        .collect();
    let (counts, due) = slo_sweep(&tasks, &recorded);
    let by_urgency = [
        SloStatus::Breached,
        SloStatus::Critical,
        SloStatus::AtRisk,
        SloStatus::Ok,
        SloStatus::Missed,
        SloStatus::Met,
        SloStatus::None,
    ];
    let shown: Vec<String> = by_urgency
        .iter()
        .map(|s| format!("{s} {}", counts[usize::from(s.urgency())]))
        .collect();
    println!(
        "capacity world: SLO of the {} open tasks: {}; {due} breaches due",
        tasks.len(),
        shown.join(", ")
    );
    assert!(
        counts[usize::from(SloStatus::Breached.urgency())] > 0,
        "some tasks are past their deadline"
    );
    assert!(due > 0, "some breaches are due");

    let sweeps = fixed_runs(100);
    let start = Instant::now();
    for _ in 0..sweeps {
        black_box(slo_sweep(&tasks, &recorded));
    }
    record(rate_line(
        "capacity",
        &format!("rules: SLO sweep (reading + breaches_due) of {task_count} tasks"),
        sweeps,
        start.elapsed(),
        task_count,
        "tasks swept",
    ));
    group.bench_function(
        format!("slo::sweep/reading + breaches_due ({task_count} open tasks)"),
        |b| b.iter(|| black_box(slo_sweep(&tasks, &recorded))),
    );
    group.finish();
}

// ---- 2. Through the runtime ----------------------------------------------------------------------------------

/// Registers the agents, creates the tasks (every deadline at least an hour away), moves the planned ones to
/// `in_progress` or `blocked`, then suspends the planned agents (a suspended agent cannot be given work).
/// Offline agents stay idle: only the heartbeat monitor sets `offline`. Returns every task's id.
async fn seed(handles: &Handles, world: &World) -> Vec<String> {
    let start = Instant::now();
    let mut agent_ids = Vec::with_capacity(world.agents.len());
    for batch in world.agents.chunks(SEED_BATCH) {
        let sends = batch.iter().map(|plan| {
            handles.directory.send(Register {
                draft: serde_json::from_value(plan.draft.clone()).expect("valid agent draft"),
                by: Principal::Admin,
            })
        });
        for reply in join_all(sends).await {
            agent_ids.push(reply.expect("mailbox").expect("registered").agent.id);
        }
    }
    let registered = start.elapsed();
    record(rate_line(
        "capacity",
        &format!("seeding: register {} agents ({SEED_BATCH} in flight)", agent_ids.len()),
        agent_ids.len(),
        registered,
        1,
        "agents",
    ));

    let start = Instant::now();
    let mut task_ids = Vec::with_capacity(world.tasks.len());
    for batch in world.tasks.chunks(SEED_BATCH) {
        let sends = batch.iter().map(|plan| {
            let draft = plan.draft_for(&agent_ids[plan.agent]);
            handles.board.send(CreateTask {
                draft: serde_json::from_value(draft).expect("valid task draft"),
                by: Principal::Admin,
            })
        });
        for reply in join_all(sends).await {
            task_ids.push(reply.expect("mailbox").expect("created").id);
        }
    }
    record(rate_line(
        "capacity",
        &format!(
            "seeding: create {} tasks with SLO + assignee ({SEED_BATCH} in flight)",
            task_ids.len()
        ),
        task_ids.len(),
        start.elapsed(),
        1,
        "tasks",
    ));

    let start = Instant::now();
    let moves: Vec<(&String, TaskStatus)> = world
        .tasks
        .iter()
        .zip(&task_ids)
        .filter(|(plan, _)| plan.status != TaskStatus::Ready)
        .map(|(plan, id)| (id, plan.status))
        .collect();
    for batch in moves.chunks(SEED_BATCH) {
        let sends = batch.iter().map(|(id, to)| {
            handles.board.send(Transition {
                id: (*id).clone(),
                to: *to,
                note: None,
                // The planned world puts some agents past their capacity: the admin forces it.
                force: true,
                by: Principal::Admin,
            })
        });
        for reply in join_all(sends).await {
            reply.expect("mailbox").expect("moved");
        }
    }
    record(rate_line(
        "capacity",
        &format!("seeding: move {} tasks to in_progress / blocked", moves.len()),
        moves.len().max(1),
        start.elapsed(),
        1,
        "tasks",
    ));

    for (plan, id) in world.agents.iter().zip(&agent_ids) {
        if plan.status == AgentStatus::Suspended {
            let patch = AgentPatch {
                status: Some(AgentStatus::Suspended),
                ..AgentPatch::default()
            };
            handles
                .directory
                .send(Update {
                    key: id.clone(),
                    patch,
                    by: Principal::Admin,
                })
                .await
                .expect("mailbox")
                .expect("suspended");
        }
    }
    task_ids
}

async fn suitable(handles: &Handles, task_id: &str) -> matching::Ranking {
    handles
        .capacity
        .send(SuitableAgents {
            task_id: task_id.to_string(),
            strategy: Strategy::Balanced,
            limit: LIMIT,
        })
        .await
        .expect("mailbox")
        .expect("ranked")
}

async fn escalation_tick(handles: &Handles) -> escalation::SweepReport {
    let report = handles
        .escalation
        .send(escalation::Tick)
        .await
        .expect("mailbox")
        .expect("swept");
    debug_assert!(report.slo_breaches.is_empty());
    report
}

fn runtime(c: &mut Criterion) {
    let (agent_count, task_count) = sizes();
    let world = World::generate(agent_count, task_count);
    let dir = tempfile::tempdir().expect("tempdir");
    let url = dir.path().join("bench.db").display().to_string();
    let system = actix_rt::System::new();
    let runtime = system
        .block_on(Runtime::start(Config::embedded(&url, dir.path()).expect("config")))
        .expect("runtime");
    let handles = runtime.handles();

    let task_ids = system.block_on(seed(&handles, &world));

    // The registry has caught up with every event, and nothing is due yet.
    system.block_on(async {
        let fleet = handles.capacity.send(Fleet).await.expect("mailbox");
        assert_eq!(fleet.totals.agents, agent_count);
        assert_eq!(fleet.totals.in_progress_count, world.count(TaskStatus::InProgress));
        assert_eq!(fleet.totals.ready_count, world.count(TaskStatus::Ready));
        assert_eq!(fleet.totals.blocked_count, world.count(TaskStatus::Blocked));
        let open = handles.board.send(OpenTasks).await.expect("mailbox");
        assert_eq!(open.len(), task_count);
        let report = handles.tick().await.expect("tick");
        assert!(report.slo_breaches.is_empty(), "every deadline is in the future");
        assert!(report.went_offline.is_empty());
        let ranking = suitable(&handles, &task_ids[0]).await;
        assert_eq!(ranking.eligible + ranking.excluded.total(), agent_count);
        assert_eq!(ranking.candidates.len(), ranking.eligible.min(LIMIT));
    });

    let runs = fixed_runs(100);
    let elapsed = system.block_on(async {
        let start = Instant::now();
        for id in task_ids.iter().cycle().take(runs) {
            black_box(suitable(&handles, id).await);
        }
        start.elapsed()
    });
    record(rate_line(
        "capacity",
        &format!("runtime: SuitableAgents balanced, {agent_count} agents / {task_count} tasks"),
        runs,
        elapsed,
        agent_count,
        "agents ranked",
    ));
    let ticks = fixed_runs(30);
    let elapsed = system.block_on(async {
        let start = Instant::now();
        for _ in 0..ticks {
            black_box(handles.board.send(OpenTasks).await.expect("mailbox"));
        }
        start.elapsed()
    });
    record(rate_line(
        "capacity",
        &format!("runtime: OpenTasks snapshot from the board ({task_count} tasks)"),
        ticks,
        elapsed,
        task_count,
        "tasks copied",
    ));
    let elapsed = system.block_on(async {
        let start = Instant::now();
        for _ in 0..ticks {
            black_box(escalation_tick(&handles).await);
        }
        start.elapsed()
    });
    record(rate_line(
        "capacity",
        &format!("runtime: escalation Tick, SLO sweep of {task_count} tasks, none due"),
        ticks,
        elapsed,
        task_count,
        "tasks swept",
    ));
    let elapsed = system.block_on(async {
        let start = Instant::now();
        for _ in 0..ticks {
            black_box(handles.tick().await.expect("tick"));
        }
        start.elapsed()
    });
    record(rate_line(
        "capacity",
        &format!("runtime: Handles::tick ({agent_count} agents, {task_count} tasks)"),
        ticks,
        elapsed,
        task_count,
        "tasks swept",
    ));

    let mut group = c.benchmark_group("runtime");
    configure(&mut group, 4);
    group.bench_function(
        format!("capacity/suitable_agents balanced ({agent_count} agents, {task_count} tasks)"),
        |b| {
            let mut probes = task_ids.iter().cycle();
            b.iter_custom(|iters| {
                system.block_on(async {
                    let start = Instant::now();
                    for _ in 0..iters {
                        let id = probes.next().expect("a cycle never ends");
                        black_box(suitable(&handles, id).await);
                    }
                    start.elapsed()
                })
            })
        },
    );
    group.bench_function(format!("escalation/tick ({task_count} open tasks, none due)"), |b| {
        b.iter_custom(|iters| {
            system.block_on(async {
                let start = Instant::now();
                for _ in 0..iters {
                    black_box(escalation_tick(&handles).await);
                }
                start.elapsed()
            })
        })
    });
    group.bench_function(
        format!("handles/tick ({agent_count} agents, {task_count} open tasks)"),
        |b| {
            b.iter_custom(|iters| {
                system.block_on(async {
                    let start = Instant::now();
                    for _ in 0..iters {
                        black_box(handles.tick().await.expect("tick"));
                    }
                    start.elapsed()
                })
            })
        },
    );
    group.bench_function(format!("board/open_tasks ({task_count} open tasks)"), |b| {
        b.iter_custom(|iters| {
            system.block_on(async {
                let start = Instant::now();
                for _ in 0..iters {
                    black_box(handles.board.send(OpenTasks).await.expect("mailbox"));
                }
                start.elapsed()
            })
        })
    });
    group.finish();

    system.block_on(runtime.stop());
}

fn summary(_: &mut Criterion) {
    let (agents, tasks) = sizes();
    print_summary(&format!(
        "capacity summary ({} logical cores, {agents} agents, {tasks} open tasks):",
        logical_cores()
    ));
}

criterion_group!(benches, rules, runtime, summary);
criterion_main!(benches);
