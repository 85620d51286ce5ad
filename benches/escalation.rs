//! Criterion benchmarks of the escalation rules engine: one evaluation pass over every open task (by default
//! 10 000, assigned among 1 000 agents) with the default rules, in the steady state where nothing fires.
//!
//! 1. `pure_pass`: the domain rule alone, `escalation::decide` for every open task with the rules as a fresh
//!    store holds them (the six defaults), at a fixed "now". The tasks are a realistic mix (ready, in progress,
//!    in review, blocked; most assigned; most with an SLO; some with failed attempts; agents that heartbeat,
//!    a few that went silent). Most tasks are healthy; the few a rule matches already fired on an earlier
//!    pass, so each is cooling down or at the top of its ladder: the pass decides, and fires nothing. The
//!    contexts (assignee heartbeats) and ladders are built once, outside the timed part.
//! 2. `scheduler_pass`: one `CheckAll { by: Principal::Admin }` to the running `EscalationScheduler` (real
//!    actors on SQLite in a temporary folder, a `ManualClock`), which evaluates every open task of its read
//!    model. The same planned world is replayed through the actors in time order (agents registered, tasks
//!    created, attempts started and failed, tasks moved, heartbeats sent, the clock set to each step's time),
//!    then passes are run at "now" until one fires and resolves nothing (what matches fired and is cooling
//!    down); that settled pass is what is measured, and every measured pass must be settled too. The seeding
//!    is timed once and reported, never measured by criterion. To attribute the actor's cost, the pure rule is
//!    also timed over the scheduler's own state (its open tasks, the agents' heartbeats and the open ladders
//!    read back from the store), where it must agree that nothing fires: over a plain list, split into the quiet
//!    and the held-back tasks, and over the scheduler's storage (hash maps by id, each task's ladders copied
//!    on every evaluation).
//!
//! Each part also times a fixed number of passes outside criterion; a summary, with the one-line figure the
//! README quotes, is printed at the end. The fixed runs ignore criterion's name filter. Sizes come from the
//! environment: `MC_BENCH_AGENTS` (default 1000) and `MC_BENCH_TASKS` (default 10000); under
//! `cargo test --benches` (no `--bench` argument) the defaults drop to 100 and 1000 so the smoke run is quick.

mod support;

use criterion::{criterion_group, criterion_main, BenchmarkGroup, Criterion};
use futures_util::future::join_all;
use mission_control::actors::directory::messages::{Heartbeat, Register};
use mission_control::actors::escalation::{CheckAll, CheckReport, ListRules};
use mission_control::actors::task_board::messages::{CreateTask, Fail, OpenTasks, Transition};
use mission_control::clock::Clock;
use mission_control::config::Config;
use mission_control::domain::capacity;
use mission_control::domain::dependency::BlockedBy;
use mission_control::domain::escalation::{self, ChainSummary, Escalation, EscalationRule, Ladder, TaskContext};
use mission_control::domain::task::{self, TaskDraft, TaskFailure};
use mission_control::domain::{Principal, SlaTier, Task, TaskStatus};
use mission_control::store::{escalation_queries, queries};
use mission_control::{Handles, ManualClock, Runtime, SystemClock};
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap};
use std::hint::black_box;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use support::{fixed_runs, logical_cores, print_summary, rate_line, record, sizes};

/// For the headline: the rules' count and the median pass of each part.
static HEADLINE: Mutex<Headline> = Mutex::new(Headline {
    rules: 0,
    pure: None,
    scheduler: None,
});

struct Headline {
    rules: usize,
    pure: Option<Duration>,
    scheduler: Option<Duration>,
}

/// The pure rule's "now": a fixed instant, so the world is the same on every run.
const NOW: i64 = 1_800_000_000_000;
const SECOND: i64 = 1_000;
const MINUTE: i64 = 60 * SECOND;
const HOUR: i64 = 60 * MINUTE;
/// Requests in flight at once while registering agents.
const SEED_BATCH: usize = 250;
/// Passes at "now" allowed before the runtime's world must have settled.
const SETTLING_PASSES: usize = 10;

const ROLES: [&str; 5] = ["backend", "ml", "frontend", "infra", "docs"];
const SKILLS: [&str; 6] = ["rust", "python", "sql", "typescript", "kubernetes", "docs"];
const ERROR_KINDS: [&str; 4] = ["timeout", "oom", "tool_error", "bad_output"];

/// Times `runs` passes one by one: (total, median).
fn time_runs(runs: usize, mut pass: impl FnMut()) -> (Duration, Duration) {
    let mut each: Vec<Duration> = (0..runs.max(1))
        .map(|_| {
            let start = Instant::now();
            pass();
            start.elapsed()
        })
        .collect();
    let total = each.iter().sum();
    each.sort();
    (total, each[each.len() / 2])
}

fn configure(group: &mut BenchmarkGroup<'_, criterion::measurement::WallTime>, measure: u64) {
    group.sample_size(10);
    group.warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(measure));
}

// ---- The world: the same agents and task histories for the pure rule and the runtime -----------------------

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

    /// A duration below `ms`.
    fn within(&mut self, ms: i64) -> i64 {
        self.below(ms.max(1) as u64) as i64
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len() as u64) as usize]
    }
}

/// Every time below is relative to "now": a negative number of milliseconds.
struct AgentPlan {
    /// The registration body.
    draft: Value,
    /// The last heartbeat; `None`: never sent one.
    heartbeat: Option<i64>,
}

/// One failed attempt: started (`in_progress`), then failed back to `ready`.
struct Attempt {
    started: i64,
    failed: i64,
    error_kind: &'static str,
}

struct TaskPlan {
    /// Index of the assignee in the agents.
    agent: Option<usize>,
    /// The creation body without its assignee (status `ready`).
    draft: Value,
    created: i64,
    attempts: Vec<Attempt>,
    /// The last move, to `in_progress`, `review` (through `in_progress`, at the same instant) or `blocked`;
    /// `None` leaves the task `ready`.
    last_move: Option<(TaskStatus, i64)>,
}

impl TaskPlan {
    fn draft_for(&self, assignee: Option<&str>) -> TaskDraft {
        let mut draft = self.draft.clone();
        if let Some(id) = assignee {
            draft["assigneeId"] = json!(id);
        }
        serde_json::from_value(draft).expect("valid task draft")
    }

    fn status(&self) -> TaskStatus {
        self.last_move.map_or(TaskStatus::Ready, |(status, _)| status)
    }
}

struct World {
    agents: Vec<AgentPlan>,
    tasks: Vec<TaskPlan>,
}

fn tier(draft: &mut Value, tier: SlaTier) -> i64 {
    draft["slaTier"] = json!(tier.as_str());
    tier.duration_ms().unwrap_or(0)
}

impl World {
    /// Most agents heartbeat every few minutes; 3 % went silent 10 to 90 minutes ago, 1 % never sent one.
    /// Tasks: 85 % assigned; of those, 30 % in progress, 10 % in review, 10 % blocked, the rest ready (an
    /// unassigned task is ready, or blocked for one in ten). 90 % have an SLO, 5 % of which are past 75 % of
    /// it. One assigned task in five failed before (1, 2 or, rarely, 3 attempts: those are ready again).
    /// Time in the current status stays under the default rules' thresholds for 94 % to 97 % of the tasks.
    fn generate(agents: usize, tasks: usize) -> World {
        let mut rng = Rng(0xE5CA_1A7E_5EED);
        let agents: Vec<AgentPlan> = (0..agents)
            .map(|i| {
                let draft = json!({
                    "name": format!("agent-{i:05}"),
                    "role": rng.pick(&ROLES),
                    "specializations": [rng.pick(&SKILLS)],
                    "maxConcurrentTasks": 4 + rng.below(8),
                });
                let heartbeat = match rng.below(100) {
                    0 => None,
                    1..=3 => Some(-(10 * MINUTE + rng.within(80 * MINUTE))),
                    _ => Some(-rng.within(5 * MINUTE)),
                };
                AgentPlan { draft, heartbeat }
            })
            .collect();
        let tasks = (0..tasks)
            .map(|i| {
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
                let slo = match rng.below(100) {
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
                let agent = rng.chance(85).then(|| rng.below(agents.len() as u64) as usize);
                let mut status = match (agent.is_some(), rng.below(100)) {
                    (true, 0..=29) => TaskStatus::InProgress,
                    (true, 30..=39) => TaskStatus::Review,
                    (true, 40..=49) | (false, 0..=9) => TaskStatus::Blocked,
                    _ => TaskStatus::Ready,
                };
                let failures = match (agent.is_some(), rng.below(100)) {
                    (false, _) | (true, 0..=79) => 0,
                    (true, 80..=91) => 1,
                    (true, 92..=97) => 2,
                    _ => 3,
                };
                if failures >= 3 {
                    status = TaskStatus::Ready;
                }
                let age = match slo {
                    Some(slo) => {
                        let used = if rng.chance(95) {
                            rng.below(70) as i64
                        } else {
                            75 + rng.below(40) as i64
                        };
                        (slo * used / 100).max(2 * MINUTE)
                    }
                    None => 10 * MINUTE + rng.within(72 * HOUR),
                };
                let created = -age;
                let in_status = match status {
                    TaskStatus::InProgress if rng.chance(97) => rng.within(110 * MINUTE),
                    TaskStatus::InProgress => 125 * MINUTE + rng.within(4 * HOUR),
                    TaskStatus::Blocked if rng.chance(94) => rng.within(28 * MINUTE),
                    TaskStatus::Blocked => 31 * MINUTE + rng.within(210 * MINUTE),
                    TaskStatus::Review if rng.chance(95) => rng.within(55 * MINUTE),
                    TaskStatus::Review => 61 * MINUTE + rng.within(4 * HOUR),
                    _ => 0,
                };
                let last_move = (status != TaskStatus::Ready).then(|| (status, (-in_status).max(created + MINUTE)));
                // The failed attempts happen before the last move and before 70 % of the SLO is used, so no rule
                // matches the task at any of its events until the last.
                let start = created + SECOND;
                let mut end = last_move.map_or(0, |(_, at)| at);
                if let Some(slo) = slo {
                    end = end.min(created + slo * 7 / 10);
                }
                let slot = (end - start) / failures.max(1);
                let attempts = if failures == 0 || slot < 4 {
                    Vec::new()
                } else {
                    (0..failures)
                        .map(|n| {
                            let from = start + n * slot;
                            Attempt {
                                started: from + slot / 4,
                                failed: from + slot / 2,
                                error_kind: rng.pick(&ERROR_KINDS),
                            }
                        })
                        .collect()
                };
                TaskPlan {
                    agent,
                    draft,
                    created,
                    attempts,
                    last_move,
                }
            })
            .collect();
        World { agents, tasks }
    }

    fn count(&self, status: TaskStatus) -> usize {
        self.tasks.iter().filter(|t| t.status() == status).count()
    }

    /// The earliest time in the plan.
    fn horizon(&self) -> i64 {
        let first_task = self.tasks.iter().map(|t| t.created).min().unwrap_or(0);
        let first_beat = self.agents.iter().filter_map(|a| a.heartbeat).min().unwrap_or(0);
        first_task.min(first_beat)
    }
}

// ---- 1. The pure rule ------------------------------------------------------------------------------------------

/// One open task as `decide` takes it.
struct Case {
    task: Task,
    context: TaskContext,
    ladders: BTreeMap<String, Ladder>,
}

/// What one pass decided, task by task.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Tally {
    /// Tasks a rule fires for.
    fire: usize,
    /// Tasks a rule matches but is cooling down for.
    held_back: usize,
    /// Open ladders that resolve.
    resolve: usize,
    /// Tasks nothing happens to (healthy, or the matching rules at the top of their ladder).
    quiet: usize,
}

/// One evaluation pass: `decide` for every task.
fn pure_pass<'a>(
    rules: &[EscalationRule],
    cases: impl IntoIterator<Item = &'a Case>,
    max_depth: u32,
    now: i64,
) -> Tally {
    let mut tally = Tally::default();
    for case in cases {
        let decision = escalation::decide(rules, &case.task, case.context, &case.ladders, max_depth, now);
        match (&decision.fire, &decision.held_back) {
            (Some(_), _) => tally.fire += 1,
            (None, Some(_)) => tally.held_back += 1,
            (None, None) => tally.quiet += 1,
        }
        tally.resolve += decision.resolve.len();
        black_box(decision);
    }
    tally
}

/// How many tasks each rule matches now (any one trigger), and how many tasks at least one rule matches.
fn matches_by_rule(rules: &[EscalationRule], cases: &[Case], now: i64) -> (Vec<(String, usize)>, usize) {
    let mut by_rule: Vec<(String, usize)> = rules.iter().map(|r| (r.name.clone(), 0)).collect();
    let mut any = 0;
    for case in cases {
        let mut matched = false;
        for (rule, count) in rules.iter().zip(by_rule.iter_mut()) {
            if escalation::matches(rule, &case.task, case.context, now).is_some() {
                count.1 += 1;
                matched = true;
            }
        }
        any += usize::from(matched);
    }
    (by_rule, any)
}

/// The planned world as domain values at [`NOW`], each task built through the same moves the board makes.
fn pure_cases(world: &World) -> Vec<Case> {
    let agent_id = |i: usize| format!("a{i:05}");
    world
        .tasks
        .iter()
        .enumerate()
        .map(|(i, plan)| {
            let assignee = plan.agent.map(agent_id);
            let draft = plan.draft_for(assignee.as_deref());
            let mut t =
                task::create(draft, format!("t{i:06}"), "admin".into(), NOW + plan.created).expect("valid task");
            for attempt in &plan.attempts {
                t = task::moved(&t, TaskStatus::InProgress, NOW + attempt.started);
                t.failures.push(TaskFailure {
                    at: NOW + attempt.failed,
                    error_kind: attempt.error_kind.into(),
                    message: "bench failure".into(),
                    agent_id: t.assignee_id.clone(),
                });
                t = task::moved(&t, TaskStatus::Ready, NOW + attempt.failed);
            }
            if let Some((status, at)) = plan.last_move {
                if status == TaskStatus::Review {
                    t = task::moved(&t, TaskStatus::InProgress, NOW + at);
                }
                t = task::moved(&t, status, NOW + at);
            }
            let context = TaskContext {
                assignee_heartbeat_at: plan.agent.and_then(|a| world.agents[a].heartbeat).map(|at| NOW + at),
                ..TaskContext::default()
            };
            Case {
                task: t,
                context,
                ladders: BTreeMap::new(),
            }
        })
        .collect()
}

/// Brings the cases to the steady state: what would fire now fired on an earlier pass, most of it 5 minutes
/// ago (cooling down), one in five long ago and at the top of its ladder. Repeated until nothing fires (at
/// the top of one ladder, the next rule may match).
fn settle(rules: &[EscalationRule], cases: &mut [Case], max_depth: u32) -> usize {
    let mut rng = Rng(0x1ADD_E500);
    for round in 1..=rules.len() + 1 {
        let mut fired = 0;
        for case in cases.iter_mut() {
            let decision = escalation::decide(rules, &case.task, case.context, &case.ladders, max_depth, NOW);
            if let Some((rule, _, _)) = decision.fire {
                let ladder = if rng.chance(80) {
                    Ladder {
                        level: 1,
                        last_fired_at: Some(NOW - 5 * MINUTE),
                    }
                } else {
                    Ladder {
                        level: max_depth,
                        last_fired_at: Some(NOW - 2 * HOUR),
                    }
                };
                case.ladders.insert(rule, ladder);
                fired += 1;
            }
        }
        if fired == 0 {
            return round;
        }
    }
    panic!("the pure world does not settle");
}

fn describe(label: &str, rules: &[EscalationRule], cases: &[Case], tally: Tally, now: i64) {
    let (by_rule, any) = matches_by_rule(rules, cases, now);
    let shown: Vec<String> = by_rule.iter().map(|(name, n)| format!("'{name}' {n}")).collect();
    println!(
        "escalation world ({label}): {} open tasks, a rule matches {any} of them ({}); decisions: {} fire, {} held \
         back (cooling down), {} quiet, {} ladders resolve",
        cases.len(),
        shown.join(", "),
        tally.fire,
        tally.held_back,
        tally.quiet,
        tally.resolve,
    );
}

fn pure(c: &mut Criterion, rules: &[EscalationRule], world: &World, max_depth: u32) {
    let mut cases = pure_cases(world);
    let rounds = settle(rules, &mut cases, max_depth);
    let task_count = cases.len();
    let rule_count = rules.len();
    let tally = pure_pass(rules, &cases, max_depth, NOW);
    println!(
        "escalation world: {} agents; {task_count} open tasks ({} ready, {} in progress, {} review, {} blocked; {} \
         assigned, {} with an SLO, {} with failed attempts); settled in {rounds} rounds",
        world.agents.len(),
        world.count(TaskStatus::Ready),
        world.count(TaskStatus::InProgress),
        world.count(TaskStatus::Review),
        world.count(TaskStatus::Blocked),
        cases.iter().filter(|c| c.task.assignee_id.is_some()).count(),
        cases.iter().filter(|c| c.task.slo_deadline_at.is_some()).count(),
        cases.iter().filter(|c| !c.task.failures.is_empty()).count(),
    );
    describe("pure", rules, &cases, tally, NOW);
    assert_eq!(tally.fire, 0, "the steady state fires nothing");
    assert_eq!(tally.resolve, 0, "the steady state resolves nothing");
    assert_eq!(tally.fire + tally.held_back + tally.quiet, task_count);

    let runs = fixed_runs(200);
    let (total, median) = time_runs(runs, || {
        black_box(pure_pass(rules, &cases, max_depth, NOW));
    });
    HEADLINE.lock().unwrap_or_else(|p| p.into_inner()).pure = Some(median);
    record(rate_line(
        "escalation",
        &format!("pure: decide over {task_count} open tasks, {rule_count} rules (median {median:.2?})"),
        runs,
        total,
        task_count,
        "tasks evaluated",
    ));

    let mut group = c.benchmark_group("escalation");
    configure(&mut group, 3);
    group.bench_function(
        format!("pure_pass ({task_count} open tasks, {rule_count} rules)"),
        |b| b.iter(|| black_box(pure_pass(rules, &cases, max_depth, NOW))),
    );
    group.finish();
}

// ---- 2. Through the scheduler ---------------------------------------------------------------------------------

/// One step of the replay.
enum Step {
    Beat(usize),
    Create(usize),
    Start(usize),
    Fail(usize, &'static str),
    Move(usize, TaskStatus),
}

/// Every step of the plan, in time order (a task's own steps keep their order).
fn timeline(world: &World) -> Vec<(i64, Step)> {
    let mut steps = Vec::new();
    for (i, agent) in world.agents.iter().enumerate() {
        if let Some(at) = agent.heartbeat {
            steps.push((at, Step::Beat(i)));
        }
    }
    for (i, plan) in world.tasks.iter().enumerate() {
        steps.push((plan.created, Step::Create(i)));
        for attempt in &plan.attempts {
            steps.push((attempt.started, Step::Start(i)));
            steps.push((attempt.failed, Step::Fail(i, attempt.error_kind)));
        }
        if let Some((status, at)) = plan.last_move {
            if status == TaskStatus::Review {
                steps.push((at, Step::Start(i)));
            }
            steps.push((at, Step::Move(i, status)));
        }
    }
    steps.sort_by_key(|(at, _)| *at);
    steps
}

fn move_to(id: &str, to: TaskStatus) -> Transition {
    Transition {
        id: id.to_string(),
        to,
        note: None,
        // The planned world puts some agents past their capacity: the admin forces it.
        force: true,
        by: Principal::Admin,
    }
}

/// Registers the agents (the clock is at the start of the plan), then replays every step with the clock set to its time.
/// After each task step, waits until the scheduler has handled the task's event (its mailbox is in order),
/// so it evaluates each event at the event's time, as it would live. Returns the agents' and tasks' ids.
async fn seed(handles: &Handles, clock: &ManualClock, world: &World, now: i64) -> (Vec<String>, Vec<String>) {
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
    record(rate_line(
        "escalation",
        &format!("seeding: register {} agents ({SEED_BATCH} in flight)", agent_ids.len()),
        agent_ids.len(),
        start.elapsed(),
        1,
        "agents",
    ));

    let steps = timeline(world);
    let start = Instant::now();
    let mut task_ids: Vec<Option<String>> = vec![None; world.tasks.len()];
    let id_of = |ids: &[Option<String>], i: usize| ids[i].clone().expect("created before its other steps");
    for (at, step) in &steps {
        clock.set_ms(now + at);
        match step {
            Step::Beat(a) => {
                let beat = Heartbeat {
                    key: agent_ids[*a].clone(),
                    status: None,
                    current_task_id: None,
                    by: Principal::Admin,
                };
                handles.directory.send(beat).await.expect("mailbox").expect("heartbeat");
                continue;
            }
            Step::Create(i) => {
                let plan = &world.tasks[*i];
                let draft = plan.draft_for(plan.agent.map(|a| agent_ids[a].as_str()));
                let created = handles
                    .board
                    .send(CreateTask {
                        draft,
                        by: Principal::Admin,
                    })
                    .await
                    .expect("mailbox")
                    .expect("created");
                task_ids[*i] = Some(created.id);
            }
            Step::Start(i) => {
                let msg = move_to(&id_of(&task_ids, *i), TaskStatus::InProgress);
                handles.board.send(msg).await.expect("mailbox").expect("started");
            }
            Step::Fail(i, kind) => {
                let msg = Fail {
                    id: id_of(&task_ids, *i),
                    error_kind: kind.to_string(),
                    message: "bench failure".into(),
                    by: Principal::Admin,
                };
                handles.board.send(msg).await.expect("mailbox").expect("failed");
            }
            Step::Move(i, to) => {
                let msg = move_to(&id_of(&task_ids, *i), *to);
                handles.board.send(msg).await.expect("mailbox").expect("moved");
            }
        }
        handles
            .escalation
            .send(ListRules)
            .await
            .expect("mailbox")
            .expect("rules");
    }
    record(rate_line(
        "escalation",
        &format!(
            "seeding: replay {} steps, one at a time, clock set to each",
            steps.len()
        ),
        steps.len(),
        start.elapsed(),
        1,
        "steps",
    ));
    clock.set_ms(now);
    let task_ids = task_ids.into_iter().map(|id| id.expect("every task created")).collect();
    (agent_ids, task_ids)
}

async fn check_all(handles: &Handles) -> CheckReport {
    handles
        .escalation
        .send(CheckAll { by: Principal::Admin })
        .await
        .expect("mailbox")
        .expect("checked")
}

fn settled(report: &CheckReport) -> bool {
    report.fired.is_empty() && report.resolved == 0
}

/// The scheduler's state rebuilt from the outside: the board's open tasks, the agents' stored heartbeats, the
/// dependency edges and the open ladders from the stored history (as the scheduler rebuilds them at boot), and
/// each task's context as the scheduler computes it (the chain upstream of a blocked task, a queued task's
/// projected start).
async fn scheduler_cases(runtime: &Runtime, now: i64) -> Vec<Case> {
    let handles = runtime.handles();
    let tasks = handles.board.send(OpenTasks).await.expect("mailbox");
    let edges = runtime
        .store()
        .read(queries::all_dependencies)
        .await
        .expect("dependencies");
    let mut blocked_by: BlockedBy = HashMap::new();
    for edge in edges {
        blocked_by.entry(edge.task_id).or_default().insert(edge.blocker_id);
    }
    let timeout = i64::try_from(handles.config.heartbeat_timeout.as_millis()).unwrap_or(i64::MAX);
    let agents = runtime.store().read(queries::all_agents).await.expect("agents");
    let open: Vec<Escalation> = runtime
        .store()
        .read(escalation_queries::open_escalations)
        .await
        .expect("open escalations");
    let heartbeats: HashMap<String, i64> = agents
        .into_iter()
        .filter_map(|a| a.last_heartbeat_at.map(|at| (a.id, at)))
        .collect();
    let mut ladders: HashMap<String, BTreeMap<String, Ladder>> = HashMap::new();
    for e in &open {
        if let (Some(rule), Some(task)) = (&e.rule_id, &e.task_id) {
            let ladder = ladders
                .entry(task.clone())
                .or_default()
                .entry(rule.clone())
                .or_default();
            ladder.level = ladder.level.max(e.level);
            ladder.last_fired_at = Some(ladder.last_fired_at.unwrap_or(i64::MIN).max(e.triggered_at));
        }
    }
    let by_id: HashMap<&str, &Task> = tasks.iter().map(|t| (t.id.as_str(), t)).collect();
    let mut queues: BTreeMap<&str, Vec<&Task>> = BTreeMap::new();
    for task in &tasks {
        if let Some(agent) = task.assignee_id.as_deref() {
            queues.entry(agent).or_default().push(task);
        }
    }
    let mut starts: HashMap<String, i64> = HashMap::new();
    for queue in queues.values() {
        for (task, at) in capacity::projected_starts(queue, now) {
            starts.insert(task.id.clone(), at);
        }
    }
    let heartbeat_of = |t: &Task| t.assignee_id.as_ref().and_then(|a| heartbeats.get(a)).copied();
    let contexts: Vec<TaskContext> = tasks
        .iter()
        .map(|task| {
            let chain = if task.status == TaskStatus::Blocked {
                let upstream = escalation::upstream_of(&task.id, &blocked_by);
                let upstream = upstream
                    .iter()
                    .filter_map(|id| by_id.get(id.as_str()).copied())
                    .map(|t| (t, heartbeat_of(t)));
                escalation::chain_summary(task, upstream, now, timeout)
            } else {
                ChainSummary::default()
            };
            TaskContext {
                assignee_heartbeat_at: heartbeat_of(task),
                chain,
                projected_start_at: starts.get(&task.id).copied(),
            }
        })
        .collect();
    tasks
        .into_iter()
        .zip(contexts)
        .map(|(task, context)| Case {
            context,
            ladders: ladders.remove(&task.id).unwrap_or_default(),
            task,
        })
        .collect()
}

/// The scheduler's state stored as the scheduler stores it: the open tasks and the heartbeats in hash maps by
/// id, the ladders by task; each task's context and ladders looked up, and the ladders copied into the
/// domain's view, on every evaluation (as `EscalationScheduler::decide` does).
struct SchedulerShaped {
    tasks: HashMap<String, Task>,
    heartbeats: HashMap<String, i64>,
    ladders: HashMap<String, BTreeMap<String, Ladder>>,
    /// What the scheduler derives from its graph per pass (chain, queue start), computed once here.
    derived: HashMap<String, TaskContext>,
}

impl SchedulerShaped {
    fn new(cases: &[Case]) -> SchedulerShaped {
        let mut shaped = SchedulerShaped {
            tasks: HashMap::new(),
            heartbeats: HashMap::new(),
            ladders: HashMap::new(),
            derived: HashMap::new(),
        };
        for case in cases {
            if let (Some(agent), Some(at)) = (&case.task.assignee_id, case.context.assignee_heartbeat_at) {
                shaped.heartbeats.insert(agent.clone(), at);
            }
            if !case.ladders.is_empty() {
                shaped.ladders.insert(case.task.id.clone(), case.ladders.clone());
            }
            shaped.derived.insert(case.task.id.clone(), case.context);
            shaped.tasks.insert(case.task.id.clone(), case.task.clone());
        }
        shaped
    }

    fn pass(&self, rules: &[EscalationRule], max_depth: u32, now: i64) -> Tally {
        let mut tally = Tally::default();
        for task in self.tasks.values() {
            let context = TaskContext {
                assignee_heartbeat_at: task.assignee_id.as_ref().and_then(|a| self.heartbeats.get(a)).copied(),
                ..self.derived.get(&task.id).copied().unwrap_or_default()
            };
            let ladders = self.ladders.get(&task.id).cloned().unwrap_or_default();
            let decision = escalation::decide(rules, task, context, &ladders, max_depth, now);
            match (&decision.fire, &decision.held_back) {
                (Some(_), _) => tally.fire += 1,
                (None, Some(_)) => tally.held_back += 1,
                (None, None) => tally.quiet += 1,
            }
            tally.resolve += decision.resolve.len();
            black_box(decision);
        }
        tally
    }
}

/// The runtime's clock starts at the beginning of the plan; `now` is the plan's "now".
fn scheduler(
    c: &mut Criterion,
    system: &actix_rt::SystemRunner,
    runtime: &Runtime,
    clock: &ManualClock,
    world: &World,
    now: i64,
) {
    let task_count = world.tasks.len();
    let handles = runtime.handles();
    let rules = system
        .block_on(handles.escalation.send(ListRules))
        .expect("mailbox")
        .expect("rules");
    let rule_count = rules.len();
    let max_depth = handles.config.escalation.max_depth;

    system.block_on(seed(&handles, clock, world, now));

    // Passes at "now" until one fires and resolves nothing: what matches has fired and is cooling down.
    let (passes, last) = system.block_on(async {
        let mut passes = Vec::new();
        for _ in 0..SETTLING_PASSES {
            let report = check_all(&handles).await;
            passes.push((report.fired.len(), report.resolved));
            if settled(&report) {
                return (passes, report);
            }
        }
        panic!("the runtime's world has not settled after {SETTLING_PASSES} passes: (fired, resolved) {passes:?}");
    });
    println!("escalation world (scheduler): passes to settle, (fired, resolved) each: {passes:?}");
    assert_eq!(last.evaluated, task_count, "every open task is evaluated");
    let again = system.block_on(check_all(&handles));
    assert!(settled(&again), "a settled pass stays settled");
    assert_eq!(again.evaluated, task_count);

    // The pure rule over the scheduler's own state agrees: nothing fires, nothing resolves.
    let cases = system.block_on(scheduler_cases(runtime, now));
    assert_eq!(cases.len(), task_count);
    let tally = pure_pass(&rules, &cases, max_depth, now);
    describe("scheduler", &rules, &cases, tally, now);
    assert_eq!(tally.fire, 0, "the pure rule agrees that nothing fires");
    assert_eq!(tally.resolve, 0, "the pure rule agrees that nothing resolves");

    let runs = fixed_runs(200);
    let (total, _) = time_runs(runs, || {
        black_box(pure_pass(&rules, &cases, max_depth, now));
    });
    record(rate_line(
        "escalation",
        &format!("pure: decide over the scheduler's state ({task_count} tasks)"),
        runs,
        total,
        task_count,
        "tasks evaluated",
    ));
    // Where the pure pass's time goes: the quiet tasks, and the held-back ones (whose reasons are formatted).
    let (held, quiet): (Vec<&Case>, Vec<&Case>) = cases.iter().partition(|case| {
        escalation::decide(&rules, &case.task, case.context, &case.ladders, max_depth, now)
            .held_back
            .is_some()
    });
    for (part, label) in [(&quiet, "quiet"), (&held, "held back")] {
        let (total, _) = time_runs(runs, || {
            black_box(pure_pass(&rules, part.iter().copied(), max_depth, now));
        });
        record(rate_line(
            "escalation",
            &format!("pure: decide over the {} {label} tasks only", part.len()),
            runs,
            total,
            part.len().max(1),
            "tasks evaluated",
        ));
    }
    // The same pass over the scheduler's storage: hash maps by id, ladders copied per task.
    let shaped = SchedulerShaped::new(&cases);
    assert_eq!(
        shaped.pass(&rules, max_depth, now),
        tally,
        "the same decisions either way"
    );
    let (total, _) = time_runs(runs, || {
        black_box(shaped.pass(&rules, max_depth, now));
    });
    record(rate_line(
        "escalation",
        &format!("pure: decide over the scheduler's state, scheduler's maps ({task_count} tasks)"),
        runs,
        total,
        task_count,
        "tasks evaluated",
    ));

    let runs = fixed_runs(100);
    let mut unsettled = 0;
    let (total, median) = time_runs(runs, || {
        let report = system.block_on(check_all(&handles));
        unsettled += usize::from(!settled(&report));
        black_box(report);
    });
    assert_eq!(unsettled, 0, "every timed pass fires and resolves nothing");
    HEADLINE.lock().unwrap_or_else(|p| p.into_inner()).scheduler = Some(median);
    record(rate_line(
        "escalation",
        &format!("scheduler: CheckAll over {task_count} open tasks, {rule_count} rules (median {median:.2?})"),
        runs,
        total,
        task_count,
        "tasks evaluated",
    ));

    let mut group = c.benchmark_group("escalation");
    configure(&mut group, 4);
    group.bench_function(
        format!("scheduler_pass ({task_count} open tasks, {rule_count} rules, CheckAll)"),
        |b| {
            b.iter_custom(|iters| {
                system.block_on(async {
                    let start = Instant::now();
                    let mut unsettled = 0;
                    for _ in 0..iters {
                        let report = check_all(&handles).await;
                        unsettled += usize::from(!settled(&report));
                        black_box(report);
                    }
                    let elapsed = start.elapsed();
                    assert_eq!(unsettled, 0, "every measured pass fires and resolves nothing");
                    elapsed
                })
            })
        },
    );
    group.finish();
}

/// Both parts over one runtime: the rules are the ones its fresh store holds, loaded before any seeding.
fn passes(c: &mut Criterion) {
    let (agent_count, task_count) = sizes();
    let world = World::generate(agent_count, task_count);
    let dir = tempfile::tempdir().expect("tempdir");
    let url = dir.path().join("bench.db").display().to_string();
    // The plan's "now" is the wall clock's; the runtime's clock starts an hour before the plan's first step.
    let now = SystemClock.now_ms();
    let clock = ManualClock::new(now + world.horizon() - HOUR);
    let mut config = Config::embedded(&url, dir.path()).expect("config");
    config.clock = Arc::new(clock.clone());
    let system = actix_rt::System::new();
    let runtime = system.block_on(Runtime::start(config)).expect("runtime");
    let max_depth = runtime.handles.config.escalation.max_depth;
    let rules = system
        .block_on(runtime.store().read(escalation_queries::all_rules))
        .expect("rules");
    println!(
        "escalation rules: {} ({})",
        rules.len(),
        rules
            .iter()
            .map(|r| format!("'{}' priority {}", r.name, r.priority))
            .collect::<Vec<_>>()
            .join(", ")
    );
    assert!(!rules.is_empty(), "a fresh store holds the default rules");
    HEADLINE.lock().unwrap_or_else(|p| p.into_inner()).rules = rules.len();

    pure(c, &rules, &world, max_depth);
    scheduler(c, &system, &runtime, &clock, &world, now);
    system.block_on(runtime.stop());
}

fn summary(_: &mut Criterion) {
    let (agents, tasks) = sizes();
    print_summary(&format!(
        "escalation summary ({} logical cores, {agents} agents, {tasks} open tasks):",
        logical_cores()
    ));
    let headline = HEADLINE.lock().unwrap_or_else(|p| p.into_inner());
    let ms = |d: Option<Duration>| d.map_or_else(|| "n/a".to_string(), |d| format!("{:.2} ms", d.as_secs_f64() * 1e3));
    println!(
        "escalation pass: {tasks} open tasks, {} rules, nothing firing: pure {}, through the scheduler {} (medians \
         of the fixed runs)",
        headline.rules,
        ms(headline.pure),
        ms(headline.scheduler)
    );
}

criterion_group!(benches, passes, summary);
criterion_main!(benches);
