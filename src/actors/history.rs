//! Read-only history that no actor holds in memory: the activity feed. Queries run on the blocking pool.

use crate::domain::query::{ActivityQuery, Page};
use crate::domain::Activity;
use crate::error::{AppError, AppResult};
use crate::store::{queries, Store};

#[derive(Clone)]
pub struct History {
    store: Store,
}

impl History {
    pub fn new(store: Store) -> Self {
        Self { store }
    }

    pub async fn activity(&self, query: ActivityQuery) -> AppResult<Page<Activity>> {
        self.store
            .read(move |conn| queries::list_activity(conn, &query))
            .await
            .map_err(AppError::store)
    }
}
