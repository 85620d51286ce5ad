//! The figures of a run: the seed's success metrics, measured against the truth (`judge.rs`); of an
//! ablation (the same seed with the escalation rules off and with the capacity checks off); and of a sweep
//! over seeds (`sweep.rs` aggregates). Printed as text, and as JSON with `--json`.

use super::judge::{self, Count};
use super::sweep::{self, ChecklistItem, SeedFigures};
use super::world::RunOutcome;
use super::SimConfig;
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt;

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    pub settings: Settings,
    pub tasks: TaskFigures,
    pub slo: SloFigures,
    pub escalations: EscalationFigures,
    pub capacity: CapacityFigures,
    pub dependencies: DependencyFigures,
    pub messages: MessageFigures,
    pub faults: FaultFigures,
    /// Minute of the simulated day at which the runtime was restarted.
    pub restarted_at_minute: Option<i64>,
    pub serial: Option<SerialFigures>,
    /// Seconds of real time the team's run took.
    pub wall_seconds: f64,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Settings {
    pub agents: usize,
    pub tasks: usize,
    pub seed: u64,
    pub failure_rate: f64,
    pub offline_agents: usize,
    pub restart_at_percent: Option<f64>,
    /// `as is`, `escalation rules off` or `capacity checks off`.
    pub variant: String,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskFigures {
    pub total: usize,
    pub done: usize,
    pub lost: usize,
    pub stuck: usize,
    /// From the first task's arrival to the last one's completion, simulated minutes.
    pub makespan_minutes: i64,
    /// From creation to done, simulated minutes.
    pub resolution_median_minutes: i64,
    pub resolution_p95_minutes: i64,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SloFigures {
    /// Tasks that had a deadline.
    pub with_deadline: usize,
    /// Finished strictly before the deadline.
    pub met: usize,
    /// Finished at or after the deadline, or never finished.
    pub missed: usize,
    pub breach_rate_percent: f64,
    /// The runtime's own count of finished tasks that missed their deadline (a cross-check).
    pub runtime_missed: i64,
    pub breaches_recorded: usize,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RuleFigures {
    pub rule: String,
    pub fired: usize,
    pub useful: usize,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EscalationFigures {
    pub total: usize,
    pub useful: usize,
    /// Useful / total: an escalation is useful when, as it fired, its task was stuck (assignee silent or
    /// unable ever to finish it, or blocked behind such a task) or doomed, or went on to miss its deadline;
    /// for a missed acknowledgement, when its recipient was silent. `None` when nothing fired.
    pub precision_percent: Option<f64>,
    pub useful_by_reason: Vec<Count>,
    /// Tasks that were ever stuck or doomed, and how many of them got an escalation (or were taken from their
    /// assignee) within the window after the first moment they were.
    pub recall_cases: usize,
    pub recall_caught: usize,
    /// `None` when no task needed help.
    pub recall_percent: Option<f64>,
    pub recall_by_trouble: Vec<Count>,
    pub recall_window_minutes: i64,
    /// Tasks that were stuck at some point, by the simulator's truth.
    pub tasks_ever_stuck: usize,
    pub by_rule: Vec<RuleFigures>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CapacityFigures {
    /// Times an agent went above its concurrent-task limit or held more real work in progress than its
    /// minutes a day.
    pub overloads: usize,
    pub overloaded_agent_minutes: i64,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DependencyFigures {
    /// Tasks that waited on others and started.
    pub dependents_started: usize,
    /// Minutes from the last blocker's completion to the dependent's first start.
    pub start_median_minutes: Option<i64>,
    pub start_p95_minutes: Option<i64>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MessageFigures {
    /// Sent by agents and accepted by the runtime.
    pub sent: usize,
    /// Found in the recipient's mailbox at the end.
    pub delivered: usize,
    pub read: usize,
    pub ack_required: usize,
    pub acknowledged: usize,
    pub delivery_rate_percent: f64,
    /// Sends refused by the rate limit (the simulated agents do not retry them).
    pub rate_limited: usize,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FaultFigures {
    pub failed_attempts: usize,
    pub agents_gone_silent: usize,
    pub agents_marked_offline: usize,
    /// Agents slower than their estimates, and tasks beyond one of the agents with their skill.
    pub slow_agents: usize,
    pub hard_tasks: usize,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SerialFigures {
    pub makespan_minutes: i64,
    /// Serial makespan / team makespan.
    pub speedup: f64,
    pub done: usize,
}

impl Report {
    pub fn new(config: &SimConfig, team: &RunOutcome, serial: Option<&RunOutcome>) -> Report {
        let truth = &team.truth;
        let total = truth.workload.tasks.len();
        let mut resolution: Vec<i64> = (0..total)
            .filter_map(|i| Some((truth.finished_at[i]? - truth.created_at[i]?) / 60_000))
            .collect();
        resolution.sort_unstable();
        let done = total - team.stuck_tasks.len() - team.lost_tasks.len();
        let mut by_rule: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
        let mut useful = 0;
        for escalation in &team.escalations {
            // The simulation rated every escalation against its truth and the runtime stored the rating.
            let was = escalation.useful == Some(true);
            let entry = by_rule.entry(escalation.rule_name.as_str()).or_default();
            entry.0 += 1;
            entry.1 += usize::from(was);
            useful += usize::from(was);
        }
        let mut by_rule: Vec<RuleFigures> = by_rule
            .into_iter()
            .map(|(rule, (fired, useful))| RuleFigures {
                rule: rule.to_string(),
                fired,
                useful,
            })
            .collect();
        by_rule.sort_by(|a, b| b.fired.cmp(&a.fired).then(a.rule.cmp(&b.rule)));
        let cases = judge::recall_cases(truth, &team.escalations, team.recall_window_ms);
        let caught = cases.iter().filter(|c| c.caught).count();
        let (with_deadline, missed) = judge::deadlines(truth);
        let (overloads, overloaded_agent_minutes) = judge::overloads(truth, team.ended_at);
        let waits = judge::dependent_start_minutes(truth);
        let sent = truth.messages.len();
        Report {
            settings: Settings {
                agents: config.shape.agents,
                tasks: config.shape.tasks,
                seed: config.shape.seed,
                failure_rate: config.shape.failure_rate,
                offline_agents: config.shape.offline_agents,
                restart_at_percent: config.restart_at.map(|share| share * 100.0),
                variant: team.variant.label().to_string(),
            },
            tasks: TaskFigures {
                total,
                done,
                lost: team.lost_tasks.len(),
                stuck: team.stuck_tasks.len(),
                makespan_minutes: team.makespan_minutes,
                resolution_median_minutes: percentile(&resolution, 50.0),
                resolution_p95_minutes: percentile(&resolution, 95.0),
            },
            slo: SloFigures {
                with_deadline,
                met: with_deadline - missed,
                missed,
                breach_rate_percent: percent(missed as f64, with_deadline as f64),
                runtime_missed: team.slo_missed,
                breaches_recorded: team.slo_breaches_recorded,
            },
            escalations: EscalationFigures {
                total: team.escalations.len(),
                useful,
                precision_percent: share(useful, team.escalations.len()),
                useful_by_reason: judge::useful_by_reason(truth, &team.escalations),
                recall_cases: cases.len(),
                recall_caught: caught,
                recall_percent: share(caught, cases.len()),
                recall_by_trouble: judge::recall_by_trouble(&cases),
                recall_window_minutes: team.recall_window_ms / 60_000,
                tasks_ever_stuck: truth.ever_stuck(),
                by_rule,
            },
            capacity: CapacityFigures {
                overloads,
                overloaded_agent_minutes,
            },
            dependencies: DependencyFigures {
                dependents_started: waits.len(),
                start_median_minutes: (!waits.is_empty()).then(|| percentile(&waits, 50.0)),
                start_p95_minutes: (!waits.is_empty()).then(|| percentile(&waits, 95.0)),
            },
            messages: MessageFigures {
                sent,
                delivered: team.delivered,
                read: team.read,
                ack_required: truth.messages.iter().filter(|m| m.requires_ack).count(),
                acknowledged: team.acknowledged,
                delivery_rate_percent: percent(team.delivered as f64, sent as f64),
                rate_limited: truth.rate_limited,
            },
            faults: FaultFigures {
                failed_attempts: team.attempts_failed,
                agents_gone_silent: truth.silent_since.len(),
                agents_marked_offline: team.agents_marked_offline,
                slow_agents: truth.workload.agents.iter().filter(|a| a.slowness > 1.0).count(),
                hard_tasks: truth.workload.tasks.iter().filter(|t| !t.beyond.is_empty()).count(),
            },
            restarted_at_minute: team.restarted_at_minute,
            serial: serial.map(|solo| SerialFigures {
                makespan_minutes: solo.makespan_minutes,
                speedup: round1(solo.makespan_minutes as f64 / team.makespan_minutes.max(1) as f64),
                done: solo.truth.workload.tasks.len() - solo.stuck_tasks.len() - solo.lost_tasks.len(),
            }),
            wall_seconds: round1(team.wall_seconds),
        }
    }

    /// Nothing lost and nothing stuck: the run's pass mark (the exit code).
    pub fn passed(&self) -> bool {
        self.tasks.lost == 0 && self.tasks.stuck == 0 && self.messages.delivered == self.messages.sent
    }
}

/// Nearest-rank percentile of sorted values (0 when empty).
pub fn percentile(sorted: &[i64], p: f64) -> i64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// A share in percent, `None` of nothing.
fn share(part: usize, whole: usize) -> Option<f64> {
    (whole > 0).then(|| percent(part as f64, whole as f64))
}

fn percent(part: f64, whole: f64) -> f64 {
    if whole == 0.0 {
        100.0
    } else {
        round1(part * 100.0 / whole)
    }
}

fn round1(value: f64) -> f64 {
    (value * 10.0).round() / 10.0
}

fn optional_percent(value: Option<f64>) -> String {
    value.map_or("n/a".to_string(), |v| format!("{v}%"))
}

fn hours(minutes: i64) -> String {
    format!("{} h {:02} min", minutes / 60, minutes % 60)
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = &self.settings;
        let restart = match s.restart_at_percent {
            Some(p) => format!(", restart at {p}%"),
            None => String::new(),
        };
        writeln!(
            f,
            "Simulation ({}): {} agents, {} tasks, seed {}, failure rate {}, {} offline{restart}",
            s.variant, s.agents, s.tasks, s.seed, s.failure_rate, s.offline_agents
        )?;
        let t = &self.tasks;
        writeln!(
            f,
            "  tasks        {} / {} done, {} lost, {} stuck",
            t.done, t.total, t.lost, t.stuck
        )?;
        writeln!(f, "  makespan     {} (simulated)", hours(t.makespan_minutes))?;
        writeln!(
            f,
            "  resolution   median {} min, p95 {} min (creation to done)",
            t.resolution_median_minutes, t.resolution_p95_minutes
        )?;
        let slo = &self.slo;
        writeln!(
            f,
            "  SLO          {} met, {} missed of {} with a deadline: breach rate {}% \
             (runtime: {} finished late, {} breaches recorded)",
            slo.met, slo.missed, slo.with_deadline, slo.breach_rate_percent, slo.runtime_missed, slo.breaches_recorded
        )?;
        let e = &self.escalations;
        writeln!(
            f,
            "  escalations  {} fired, {} useful: precision {}; recall {} ({} of {} stuck or doomed tasks helped \
             within {} min; {} ever stuck)",
            e.total,
            e.useful,
            optional_percent(e.precision_percent),
            optional_percent(e.recall_percent),
            e.recall_caught,
            e.recall_cases,
            e.recall_window_minutes,
            e.tasks_ever_stuck
        )?;
        for rule in &e.by_rule {
            writeln!(
                f,
                "    {:<28} {:>3} fired, {:>3} useful",
                rule.rule, rule.fired, rule.useful
            )?;
        }
        for reason in &e.useful_by_reason {
            writeln!(f, "    useful: {:<34} {:>3}", reason.what, reason.count)?;
        }
        for trouble in &e.recall_by_trouble {
            writeln!(
                f,
                "    helped: {:<34} {:>3} of {}",
                trouble.what,
                trouble.count,
                trouble.of.unwrap_or(0)
            )?;
        }
        let c = &self.capacity;
        writeln!(
            f,
            "  capacity     {} overloads ({} agent-minutes above a limit)",
            c.overloads, c.overloaded_agent_minutes
        )?;
        let d = &self.dependencies;
        let minutes = |m: Option<i64>| m.map_or("n/a".to_string(), |m| format!("{m} min"));
        writeln!(
            f,
            "  dependencies {} dependents started: blocker done → start median {}, p95 {}",
            d.dependents_started,
            minutes(d.start_median_minutes),
            minutes(d.start_p95_minutes)
        )?;
        let m = &self.messages;
        writeln!(
            f,
            "  messages     {} sent, {} delivered ({}%), {} read, {} of {} acknowledged, {} rate-limited",
            m.sent, m.delivered, m.delivery_rate_percent, m.read, m.acknowledged, m.ack_required, m.rate_limited
        )?;
        let x = &self.faults;
        writeln!(
            f,
            "  faults       {} failed attempts, {} agents went silent, {} marked offline, {} slow agents, \
             {} tasks beyond an agent",
            x.failed_attempts, x.agents_gone_silent, x.agents_marked_offline, x.slow_agents, x.hard_tasks
        )?;
        if let Some(minute) = self.restarted_at_minute {
            writeln!(f, "  restart      runtime restarted at {} into the day", hours(minute))?;
        }
        if let Some(serial) = &self.serial {
            writeln!(
                f,
                "  serial       one agent: {} done, makespan {}: the team is {}x faster",
                serial.done,
                hours(serial.makespan_minutes),
                serial.speedup
            )?;
        }
        write!(f, "  wall time    {} s", self.wall_seconds)
    }
}

/// `1 − with / without`, in percent: how much of what happened without a mechanism it prevented. `None` when
/// nothing happened without it (nothing to prevent); negative when the mechanism made things worse.
pub fn prevented_percent(with: usize, without: usize) -> Option<f64> {
    (without > 0).then(|| round1((1.0 - with as f64 / without as f64) * 100.0))
}

/// One seed run three ways: as is, with every escalation rule disabled, and with the capacity checks off.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Ablation {
    pub as_is: Report,
    pub rules_off: Report,
    pub capacity_off: Report,
    /// `1 − breaches as is / breaches with the rules off`.
    pub breaches_prevented_percent: Option<f64>,
    /// `1 − overloads as is / overloads with the capacity checks off`.
    pub overloads_prevented_percent: Option<f64>,
}

impl Ablation {
    pub fn new(as_is: Report, rules_off: Report, capacity_off: Report) -> Ablation {
        Ablation {
            breaches_prevented_percent: prevented_percent(as_is.slo.missed, rules_off.slo.missed),
            overloads_prevented_percent: prevented_percent(as_is.capacity.overloads, capacity_off.capacity.overloads),
            as_is,
            rules_off,
            capacity_off,
        }
    }
}

impl fmt::Display for Ablation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{}\n", self.as_is)?;
        writeln!(f, "{}\n", self.rules_off)?;
        writeln!(f, "{}\n", self.capacity_off)?;
        writeln!(
            f,
            "Ablation: breaches prevented by the escalation rules {} ({} with, {} without); overloads prevented \
             by capacity tracking {} ({} with, {} without)",
            optional_percent(self.breaches_prevented_percent),
            self.as_is.slo.missed,
            self.rules_off.slo.missed,
            optional_percent(self.overloads_prevented_percent),
            self.as_is.capacity.overloads,
            self.capacity_off.capacity.overloads
        )
    }
}

/// One seed of a sweep: the run as is (with its serial baseline), or the whole ablation when asked for.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase", untagged)]
pub enum SeedRun {
    AsIs(Box<Report>),
    Ablation(Box<Ablation>),
}

impl SeedRun {
    pub fn as_is(&self) -> &Report {
        match self {
            SeedRun::AsIs(report) => report,
            SeedRun::Ablation(ablation) => &ablation.as_is,
        }
    }

    fn ablation(&self) -> Option<&Ablation> {
        match self {
            SeedRun::AsIs(_) => None,
            SeedRun::Ablation(ablation) => Some(ablation),
        }
    }

    pub fn figures(&self) -> SeedFigures {
        let r = self.as_is();
        SeedFigures {
            seed: r.settings.seed,
            messages_delivered_percent: r.messages.delivery_rate_percent,
            precision_percent: r.escalations.precision_percent,
            recall_percent: r.escalations.recall_percent,
            lost: r.tasks.lost,
            stuck: r.tasks.stuck,
            breach_rate_percent: (r.slo.with_deadline > 0).then_some(r.slo.breach_rate_percent),
            breaches_prevented_percent: self.ablation().and_then(|a| a.breaches_prevented_percent),
            overloads_prevented_percent: self.ablation().and_then(|a| a.overloads_prevented_percent),
            dependent_start_median_minutes: r.dependencies.start_median_minutes.map(|m| m as f64),
            speedup: r.serial.as_ref().map(|s| s.speedup),
        }
    }
}

/// A sweep over seeds and its checklist.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SweepReport {
    pub first_seed: u64,
    pub last_seed: u64,
    pub ablation: bool,
    pub seeds: Vec<SeedFigures>,
    pub checklist: Vec<ChecklistItem>,
    /// Over every seed's run as is: escalations fired and useful per rule, and stuck or doomed tasks helped
    /// in time per kind of trouble (where precision and recall are lost).
    pub by_rule: Vec<RuleFigures>,
    pub recall_by_trouble: Vec<Count>,
    pub runs: Vec<SeedRun>,
    pub wall_seconds: f64,
}

impl SweepReport {
    pub fn new(first_seed: u64, last_seed: u64, ablation: bool, runs: Vec<SeedRun>, wall_seconds: f64) -> Self {
        let seeds: Vec<SeedFigures> = runs.iter().map(SeedRun::figures).collect();
        let mut by_rule: BTreeMap<String, (usize, usize)> = BTreeMap::new();
        let mut by_trouble: BTreeMap<String, (usize, usize)> = BTreeMap::new();
        for run in &runs {
            let e = &run.as_is().escalations;
            for rule in &e.by_rule {
                let entry = by_rule.entry(rule.rule.clone()).or_default();
                entry.0 += rule.fired;
                entry.1 += rule.useful;
            }
            for trouble in &e.recall_by_trouble {
                let entry = by_trouble.entry(trouble.what.clone()).or_default();
                entry.0 += trouble.count;
                entry.1 += trouble.of.unwrap_or(0);
            }
        }
        let mut by_rule: Vec<RuleFigures> = by_rule
            .into_iter()
            .map(|(rule, (fired, useful))| RuleFigures { rule, fired, useful })
            .collect();
        by_rule.sort_by(|a, b| b.fired.cmp(&a.fired).then(a.rule.cmp(&b.rule)));
        SweepReport {
            first_seed,
            last_seed,
            ablation,
            checklist: sweep::checklist(&seeds),
            by_rule,
            recall_by_trouble: by_trouble
                .into_iter()
                .map(|(what, (count, of))| Count {
                    what,
                    count,
                    of: Some(of),
                })
                .collect(),
            seeds,
            runs,
            wall_seconds: round1(wall_seconds),
        }
    }

    /// Every seed passed (nothing lost or stuck, every message delivered).
    pub fn passed(&self) -> bool {
        self.runs.iter().all(|run| run.as_is().passed())
    }
}

impl fmt::Display for SweepReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Some(first) = self.runs.first() else {
            return write!(f, "no seeds run");
        };
        let s = &first.as_is().settings;
        writeln!(
            f,
            "Sweep: seeds {}..{}, {} agents, {} tasks, failure rate {}, {} offline{}",
            self.first_seed,
            self.last_seed,
            s.agents,
            s.tasks,
            s.failure_rate,
            s.offline_agents,
            if self.ablation { ", with ablation" } else { "" }
        )?;
        writeln!(f)?;
        writeln!(
            f,
            "| seed | delivered | precision | recall | lost | stuck | breach rate | breaches prevented | overloads prevented | dependent start | speed-up |"
        )?;
        writeln!(f, "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")?;
        let pct = |v: Option<f64>| v.map_or("n/a".to_string(), |v| format!("{v} %"));
        for seed in &self.seeds {
            writeln!(
                f,
                "| {} | {} % | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                seed.seed,
                seed.messages_delivered_percent,
                pct(seed.precision_percent),
                pct(seed.recall_percent),
                seed.lost,
                seed.stuck,
                pct(seed.breach_rate_percent),
                pct(seed.breaches_prevented_percent),
                pct(seed.overloads_prevented_percent),
                seed.dependent_start_median_minutes
                    .map_or("n/a".to_string(), |m| format!("{m} min")),
                seed.speedup.map_or("n/a".to_string(), |x| format!("{x}×")),
            )?;
        }
        writeln!(f)?;
        write!(f, "{}", sweep::markdown(&self.checklist))?;
        writeln!(f)?;
        writeln!(f, "Over all seeds, as is: escalations per rule (useful / fired)")?;
        for rule in &self.by_rule {
            writeln!(
                f,
                "  {:<28} {:>5} fired, {:>5} useful ({})",
                rule.rule,
                rule.fired,
                rule.useful,
                optional_percent(share(rule.useful, rule.fired))
            )?;
        }
        writeln!(
            f,
            "Over all seeds, as is: stuck or doomed tasks helped in time, by first trouble"
        )?;
        for trouble in &self.recall_by_trouble {
            let of = trouble.of.unwrap_or(0);
            writeln!(
                f,
                "  {:<34} {:>4} of {:>4} ({})",
                trouble.what,
                trouble.count,
                of,
                optional_percent(share(trouble.count, of))
            )?;
        }
        write!(f, "\nwall time {} s", self.wall_seconds)
    }
}
