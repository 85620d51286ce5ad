//! Identifiers: UUIDv7 text, time-ordered and unique across nodes without a sequence to coordinate.

use std::sync::Mutex;
use uuid::{timestamp::context::ContextV7, Timestamp, Uuid};

static CONTEXT: Mutex<Option<ContextV7>> = Mutex::new(None);

/// A new UUIDv7 id. Ids made by this process are strictly increasing, so ordering by id is ordering by
/// creation, which the listings rely on for "newest first" and for cursors.
pub fn new_id() -> String {
    let mut guard = CONTEXT.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let context = guard.get_or_insert_with(ContextV7::new);
    Uuid::new_v7(Timestamp::now(&*context)).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_v7_and_strictly_increasing() {
        let ids: Vec<String> = (0..1_000).map(|_| new_id()).collect();
        for pair in ids.windows(2) {
            assert!(pair[0] < pair[1], "{} !< {}", pair[0], pair[1]);
        }
        let parsed = Uuid::parse_str(&ids[0]).unwrap();
        assert_eq!(parsed.get_version_num(), 7);
    }
}
