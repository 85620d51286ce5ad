//! A sweep over seeds, summarised as the Phase 1 checklist: for each item, min / median / max over the seeds
//! and whether the target is met. Pure: the figures come in, the checklist (and its markdown table) goes out.

use serde::Serialize;
use std::fmt::Write;

/// The checklist's figures of one seed (`None` where there was nothing to measure, e.g. nothing to prevent).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SeedFigures {
    pub seed: u64,
    pub messages_delivered_percent: f64,
    pub precision_percent: Option<f64>,
    pub recall_percent: Option<f64>,
    pub lost: usize,
    pub stuck: usize,
    pub breach_rate_percent: Option<f64>,
    pub breaches_prevented_percent: Option<f64>,
    pub overloads_prevented_percent: Option<f64>,
    pub dependent_start_median_minutes: Option<f64>,
    pub speedup: Option<f64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Spread {
    pub min: f64,
    pub median: f64,
    pub max: f64,
    /// Seeds that had a value.
    pub seeds: usize,
}

/// Min, median (the mean of the middle two for an even count) and max; `None` when there are no values.
pub fn spread(values: &[f64]) -> Option<Spread> {
    let mut sorted: Vec<f64> = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let n = sorted.len();
    if n == 0 {
        return None;
    }
    let median = if n % 2 == 1 {
        sorted[n / 2]
    } else {
        (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0
    };
    Some(Spread {
        min: sorted[0],
        median,
        max: sorted[n - 1],
        seeds: n,
    })
}

/// What an item must reach, and on which statistic of the spread.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "camelCase", tag = "kind", content = "value")]
pub enum Target {
    /// The median at least this.
    MedianAtLeast(f64),
    /// The median strictly below this.
    MedianBelow(f64),
    /// Every seed at most this (the max).
    EverySeedAtMost(f64),
}

impl Target {
    pub fn met(self, spread: &Spread) -> bool {
        match self {
            Target::MedianAtLeast(bound) => spread.median >= bound,
            Target::MedianBelow(bound) => spread.median < bound,
            Target::EverySeedAtMost(bound) => spread.max <= bound,
        }
    }

    fn text(self, unit: &str) -> String {
        match self {
            Target::MedianAtLeast(bound) => format!("median ≥ {}{unit}", number(bound)),
            Target::MedianBelow(bound) => format!("median < {}{unit}", number(bound)),
            Target::EverySeedAtMost(bound) => format!("every seed ≤ {}{unit}", number(bound)),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ChecklistItem {
    pub item: String,
    pub unit: String,
    pub target: Target,
    pub spread: Option<Spread>,
    /// `None` when no seed had a value.
    pub met: Option<bool>,
}

/// The Phase 1 checklist over the seeds.
pub fn checklist(seeds: &[SeedFigures]) -> Vec<ChecklistItem> {
    type Pick = fn(&SeedFigures) -> Option<f64>;
    let rows: [(&str, &str, Target, Pick); 10] = [
        (
            "Messages delivered without error",
            " %",
            Target::MedianAtLeast(100.0),
            |s| Some(s.messages_delivered_percent),
        ),
        (
            "Escalation precision (useful / fired)",
            " %",
            Target::MedianAtLeast(95.0),
            |s| s.precision_percent,
        ),
        (
            "Escalation recall (stuck or doomed tasks helped in time)",
            " %",
            Target::MedianAtLeast(95.0),
            |s| s.recall_percent,
        ),
        ("Tasks lost", "", Target::EverySeedAtMost(0.0), |s| Some(s.lost as f64)),
        ("Tasks stuck", "", Target::EverySeedAtMost(0.0), |s| {
            Some(s.stuck as f64)
        }),
        ("SLO breach rate", " %", Target::MedianBelow(5.0), |s| {
            s.breach_rate_percent
        }),
        (
            "Breaches prevented by the escalation rules",
            " %",
            Target::MedianAtLeast(90.0),
            |s| s.breaches_prevented_percent,
        ),
        (
            "Overloads prevented by capacity tracking",
            " %",
            Target::MedianAtLeast(80.0),
            |s| s.overloads_prevented_percent,
        ),
        (
            "Blocker done → dependent started (median)",
            " min",
            Target::MedianBelow(10.0),
            |s| s.dependent_start_median_minutes,
        ),
        ("Speed-up over one agent", "×", Target::MedianAtLeast(3.0), |s| {
            s.speedup
        }),
    ];
    rows.into_iter()
        .map(|(item, unit, target, pick)| {
            let values: Vec<f64> = seeds.iter().filter_map(pick).collect();
            let spread = spread(&values);
            ChecklistItem {
                item: item.to_string(),
                unit: unit.to_string(),
                target,
                met: spread.as_ref().map(|s| target.met(s)),
                spread,
            }
        })
        .collect()
}

/// The checklist as a markdown table (the one the README shows).
pub fn markdown(items: &[ChecklistItem]) -> String {
    let mut out =
        String::from("| Checklist item | Target | Min | Median | Max | Met |\n|---|---|---:|---:|---:|:---:|\n");
    for item in items {
        let (min, median, max) = match &item.spread {
            Some(s) => (
                format!("{}{}", number(s.min), item.unit),
                format!("{}{}", number(s.median), item.unit),
                format!("{}{}", number(s.max), item.unit),
            ),
            None => ("n/a".into(), "n/a".into(), "n/a".into()),
        };
        let met = match item.met {
            Some(true) => "yes",
            Some(false) => "**no**",
            None => "n/a",
        };
        let _ = writeln!(
            out,
            "| {} | {} | {min} | {median} | {max} | {met} |",
            item.item,
            item.target.text(&item.unit)
        );
    }
    out
}

/// One decimal, without a trailing `.0`.
fn number(value: f64) -> String {
    let rounded = (value * 10.0).round() / 10.0;
    if rounded.fract() == 0.0 {
        format!("{rounded:.0}")
    } else {
        format!("{rounded:.1}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seed(seed: u64, precision: Option<f64>, stuck: usize) -> SeedFigures {
        SeedFigures {
            seed,
            messages_delivered_percent: 100.0,
            precision_percent: precision,
            recall_percent: Some(100.0),
            lost: 0,
            stuck,
            breach_rate_percent: Some(2.0),
            breaches_prevented_percent: None,
            overloads_prevented_percent: Some(85.0),
            dependent_start_median_minutes: Some(4.0),
            speedup: Some(3.5),
        }
    }

    #[test]
    fn spread_takes_min_median_and_max() {
        let s = spread(&[5.0, 1.0, 3.0]).unwrap();
        assert_eq!((s.min, s.median, s.max, s.seeds), (1.0, 3.0, 5.0, 3));
    }

    #[test]
    fn the_median_of_an_even_count_is_the_mean_of_the_middle_two() {
        assert_eq!(spread(&[4.0, 1.0, 2.0, 10.0]).unwrap().median, 3.0);
        assert_eq!(spread(&[7.0]).unwrap().median, 7.0);
    }

    #[test]
    fn no_values_no_spread() {
        assert_eq!(spread(&[]), None);
    }

    #[test]
    fn targets_are_checked_on_their_statistic() {
        let s = spread(&[0.0, 0.0, 2.0]).unwrap();
        assert!(Target::MedianAtLeast(0.0).met(&s));
        assert!(!Target::EverySeedAtMost(0.0).met(&s), "one seed had 2");
        assert!(!Target::MedianBelow(0.0).met(&s), "below is strict");
        assert!(Target::MedianBelow(0.1).met(&s));
    }

    #[test]
    fn the_checklist_skips_seeds_without_a_value_and_says_when_none_had_one() {
        let items = checklist(&[seed(1, Some(90.0), 0), seed(2, None, 1), seed(3, Some(100.0), 0)]);
        let precision = &items[1];
        assert_eq!(precision.spread.unwrap().seeds, 2);
        assert_eq!(precision.spread.unwrap().median, 95.0);
        assert_eq!(precision.met, Some(true));
        let stuck = &items[4];
        assert_eq!(stuck.met, Some(false), "a stuck task on any seed misses the target");
        let prevented = &items[6];
        assert_eq!((prevented.spread, prevented.met), (None, None));
    }

    #[test]
    fn the_markdown_table_has_a_row_per_item() {
        let table = markdown(&checklist(&[seed(1, Some(96.25), 0)]));
        assert_eq!(table.lines().count(), 2 + 10);
        assert!(
            table
                .contains("| Escalation precision (useful / fired) | median ≥ 95 % | 96.3 % | 96.3 % | 96.3 % | yes |"),
            "{table}"
        );
        assert!(table.contains("| n/a | n/a | n/a | n/a |"), "{table}");
    }
}
