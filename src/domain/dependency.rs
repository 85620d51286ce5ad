//! Task dependencies: "A is blocked by B". Cycle detection is a depth-first walk over `blockedBy` edges.

use super::RuleViolation;
use std::collections::{HashMap, HashSet};

/// The dependency graph as adjacency lists: task id → the ids of the tasks that block it.
pub type BlockedBy = HashMap<String, HashSet<String>>;

/// Checks that `task` may be blocked by `blocker` without a self-dependency or a cycle.
///
/// A cycle exists when `task` is already reachable from `blocker` by following `blockedBy` edges; the error
/// names the cycle, starting and ending at `task`.
pub fn check_new_edge(graph: &BlockedBy, task: &str, blocker: &str) -> Result<(), RuleViolation> {
    if task == blocker {
        return Err(RuleViolation::SelfDependency);
    }
    match path_between(graph, blocker, task) {
        Some(path) => {
            let mut cycle = vec![task.to_string()];
            cycle.extend(path);
            Err(RuleViolation::DependencyCycle { path: cycle })
        }
        None => Ok(()),
    }
}

/// A path from `from` to `to` following `blockedBy` edges, both ends included.
fn path_between(graph: &BlockedBy, from: &str, to: &str) -> Option<Vec<String>> {
    let mut parent: HashMap<&str, &str> = HashMap::new();
    let mut seen: HashSet<&str> = HashSet::from([from]);
    let mut stack = vec![from];
    while let Some(node) = stack.pop() {
        if node == to {
            let mut path = vec![node.to_string()];
            let mut cursor = node;
            while let Some(&prev) = parent.get(cursor) {
                path.push(prev.to_string());
                cursor = prev;
            }
            path.reverse();
            return Some(path);
        }
        for next in graph.get(node).into_iter().flatten() {
            if seen.insert(next.as_str()) {
                parent.insert(next.as_str(), node);
                stack.push(next.as_str());
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn graph(edges: &[(&str, &str)]) -> BlockedBy {
        let mut g = BlockedBy::new();
        for (task, blocker) in edges {
            g.entry(task.to_string()).or_default().insert(blocker.to_string());
        }
        g
    }

    #[test]
    fn self_dependency_is_refused() {
        assert_eq!(
            check_new_edge(&BlockedBy::new(), "a", "a"),
            Err(RuleViolation::SelfDependency)
        );
    }

    #[test]
    fn direct_cycle_is_refused() {
        let g = graph(&[("b", "a")]);
        match check_new_edge(&g, "a", "b") {
            Err(RuleViolation::DependencyCycle { path }) => assert_eq!(path, vec!["a", "b", "a"]),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn long_cycle_is_refused_with_its_path() {
        let g = graph(&[("b", "c"), ("c", "d"), ("d", "a")]);
        match check_new_edge(&g, "a", "b") {
            Err(RuleViolation::DependencyCycle { path }) => assert_eq!(path, vec!["a", "b", "c", "d", "a"]),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn diamonds_and_unrelated_edges_are_fine() {
        let g = graph(&[("d", "b"), ("d", "c"), ("b", "a"), ("c", "a"), ("x", "y")]);
        assert!(check_new_edge(&g, "e", "d").is_ok());
        assert!(check_new_edge(&g, "a", "x").is_ok());
        assert!(check_new_edge(&g, "d", "a").is_ok(), "a redundant edge is not a cycle");
        assert!(check_new_edge(&g, "a", "d").is_err());
    }
}
