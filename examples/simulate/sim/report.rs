//! The figures of a run: the seed's success metrics, measured. Printed as text, and as JSON with `--json`.

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
    /// Finished tasks that had a deadline.
    pub with_deadline: i64,
    pub met: i64,
    pub missed: i64,
    pub breach_rate_percent: f64,
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
    /// Useful / total: an escalation is useful when its task really was stuck (or, for a missed
    /// acknowledgement, its recipient really was silent).
    pub accuracy_percent: f64,
    /// Tasks that were stuck at some point, by the simulator's truth.
    pub tasks_ever_stuck: usize,
    pub by_rule: Vec<RuleFigures>,
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
        let sent = truth.messages.len();
        let with_deadline = team.slo_met + team.slo_missed;
        Report {
            settings: Settings {
                agents: config.shape.agents,
                tasks: config.shape.tasks,
                seed: config.shape.seed,
                failure_rate: config.shape.failure_rate,
                offline_agents: config.shape.offline_agents,
                restart_at_percent: config.restart_at.map(|share| share * 100.0),
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
                met: team.slo_met,
                missed: team.slo_missed,
                breach_rate_percent: percent(team.slo_missed as f64, with_deadline as f64),
                breaches_recorded: team.slo_breaches_recorded,
            },
            escalations: EscalationFigures {
                total: team.escalations.len(),
                useful,
                accuracy_percent: percent(useful as f64, team.escalations.len() as f64),
                tasks_ever_stuck: truth.ever_stuck(),
                by_rule,
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
            "Simulation: {} agents, {} tasks, seed {}, failure rate {}, {} offline{restart}",
            s.agents, s.tasks, s.seed, s.failure_rate, s.offline_agents
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
            "  SLO          {} met, {} missed of {} with a deadline: breach rate {}% ({} breaches recorded)",
            slo.met, slo.missed, slo.with_deadline, slo.breach_rate_percent, slo.breaches_recorded
        )?;
        let e = &self.escalations;
        writeln!(
            f,
            "  escalations  {} fired, {} useful: accuracy {}% ({} tasks were ever stuck)",
            e.total, e.useful, e.accuracy_percent, e.tasks_ever_stuck
        )?;
        for rule in &e.by_rule {
            writeln!(
                f,
                "    {:<28} {:>3} fired, {:>3} useful",
                rule.rule, rule.fired, rule.useful
            )?;
        }
        let m = &self.messages;
        writeln!(
            f,
            "  messages     {} sent, {} delivered ({}%), {} read, {} of {} acknowledged, {} rate-limited",
            m.sent, m.delivered, m.delivery_rate_percent, m.read, m.acknowledged, m.ack_required, m.rate_limited
        )?;
        let x = &self.faults;
        writeln!(
            f,
            "  faults       {} failed attempts, {} agents went silent, {} marked offline",
            x.failed_attempts, x.agents_gone_silent, x.agents_marked_offline
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
