//! The Journal: the single writer.
//!
//! One thread owns one connection and a queue of write batches. It takes everything queued (up to a bound),
//! commits it in one transaction with one savepoint per batch, and then answers each batch in the order it
//! arrived. A batch that fails on its own (a constraint, say) is rolled back to its savepoint and fails alone;
//! a failed commit fails every batch in that transaction. Owners reply to their clients only after the
//! journal's answer, which is what makes "acknowledged" mean "durable".

use super::rows::{
    ActivityRow, AgentRow, BreachRow, DependencyRow, EscalationRow, MessageRow, OutboxRow, RuleRow, TaskRow,
    TemplateRow, TokenRow,
};
use super::schema::{
    activities, agents, api_tokens, escalation_rules, escalations, message_templates, messages, outbox, slo_breaches,
    task_dependencies, tasks,
};
use super::{AnyConnection, StoreError};
use crate::domain::escalation::{ActionResult, Escalation, EscalationRule};
use crate::domain::outbox::OutboxItem;
use crate::domain::slo::SloBreach;
use crate::domain::template::MessageTemplate;
use crate::domain::{Activity, Agent, Message, Task};
use crate::observability;
use diesel::prelude::*;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use tokio::sync::{mpsc, oneshot};

/// Every kind of change the runtime makes, as data. The journal is the one place that turns them into SQL.
#[derive(Debug, Clone)]
pub enum WriteOp {
    InsertAgent(AgentRow),
    UpdateAgent(AgentRow),
    DeleteAgent {
        id: String,
    },
    InsertToken(TokenRow),
    /// Replaces an agent's token hash (rotation).
    SetAgentToken {
        agent_id: String,
        token_hash: String,
    },
    /// Removes every admin token and stores this one.
    ReplaceAdminToken(TokenRow),
    InsertTask(TaskRow),
    UpdateTask(TaskRow),
    DeleteTask {
        id: String,
    },
    InsertDependency(DependencyRow),
    DeleteDependency {
        task_id: String,
        blocker_id: String,
    },
    InsertActivity(ActivityRow),
    InsertMessage(MessageRow),
    /// Read, acknowledgement or escalation state of one message.
    UpdateMessage(MessageRow),
    /// Messages past their expiry, by id.
    DeleteMessages {
        ids: Vec<String>,
    },
    InsertTemplate(TemplateRow),
    UpdateTemplate(TemplateRow),
    DeleteTemplate {
        id: String,
    },
    InsertBreach(BreachRow),
    InsertRule(RuleRow),
    UpdateRule(RuleRow),
    DeleteRule {
        id: String,
    },
    InsertEscalation(EscalationRow),
    /// The results of a firing's actions, once they have run.
    RecordActions {
        id: String,
        actions: String,
    },
    ResolveEscalations {
        ids: Vec<String>,
        at: i64,
    },
    RateEscalation {
        id: String,
        useful: bool,
        at: i64,
    },
    /// A new outbox row; a row with the same dedupe key already stored wins (the effect was written before).
    InsertOutbox(OutboxRow),
    /// The outcome of a delivery attempt (or an operator's retry).
    UpdateOutbox(OutboxRow),
}

impl WriteOp {
    pub fn insert_agent(agent: &Agent) -> Self {
        WriteOp::InsertAgent(agent.into())
    }
    pub fn update_agent(agent: &Agent) -> Self {
        WriteOp::UpdateAgent(agent.into())
    }
    pub fn insert_task(task: &Task) -> Self {
        WriteOp::InsertTask(task.into())
    }
    pub fn update_task(task: &Task) -> Self {
        WriteOp::UpdateTask(task.into())
    }
    pub fn activity(activity: &Activity) -> Self {
        WriteOp::InsertActivity(activity.into())
    }
    pub fn insert_message(message: &Message) -> Self {
        WriteOp::InsertMessage(message.into())
    }
    pub fn update_message(message: &Message) -> Self {
        WriteOp::UpdateMessage(message.into())
    }
    pub fn insert_template(template: &MessageTemplate) -> Self {
        WriteOp::InsertTemplate(template.into())
    }
    pub fn update_template(template: &MessageTemplate) -> Self {
        WriteOp::UpdateTemplate(template.into())
    }
    pub fn insert_breach(breach: &SloBreach) -> Self {
        WriteOp::InsertBreach(breach.into())
    }
    pub fn insert_rule(rule: &EscalationRule) -> Self {
        WriteOp::InsertRule(rule.into())
    }
    pub fn update_rule(rule: &EscalationRule) -> Self {
        WriteOp::UpdateRule(rule.into())
    }
    pub fn insert_escalation(escalation: &Escalation) -> Self {
        WriteOp::InsertEscalation(escalation.into())
    }
    pub fn record_actions(id: &str, actions: &[ActionResult]) -> Self {
        WriteOp::RecordActions {
            id: id.to_string(),
            actions: serde_json::to_string(actions).unwrap_or_else(|_| "[]".into()),
        }
    }
    pub fn insert_outbox(item: &OutboxItem) -> Self {
        WriteOp::InsertOutbox(item.into())
    }
    pub fn update_outbox(item: &OutboxItem) -> Self {
        WriteOp::UpdateOutbox(item.into())
    }
    pub fn agent_token(id: String, agent_id: &str, token_hash: String, now: i64) -> Self {
        WriteOp::InsertToken(TokenRow {
            id,
            kind: "agent".into(),
            agent_id: Some(agent_id.to_string()),
            token_hash,
            created_at: now,
        })
    }
    pub fn admin_token(id: String, token_hash: String, now: i64) -> Self {
        WriteOp::ReplaceAdminToken(TokenRow {
            id,
            kind: "admin".into(),
            agent_id: None,
            token_hash,
            created_at: now,
        })
    }
    pub fn dependency(task_id: &str, blocker_id: &str, created_by: String, now: i64) -> Self {
        WriteOp::InsertDependency(DependencyRow {
            task_id: task_id.to_string(),
            blocker_id: blocker_id.to_string(),
            created_by,
            created_at: now,
        })
    }

    fn apply(&self, conn: &mut AnyConnection) -> QueryResult<()> {
        fn expect_one(n: usize, what: &str) -> QueryResult<()> {
            if n == 1 {
                Ok(())
            } else {
                log::warn!("journal: {what} touched {n} rows");
                Err(diesel::result::Error::NotFound)
            }
        }
        match self {
            WriteOp::InsertAgent(row) => diesel::insert_into(agents::table).values(row).execute(conn).map(drop),
            WriteOp::UpdateAgent(row) => {
                let n = diesel::update(agents::table.find(&row.id)).set(row).execute(conn)?;
                expect_one(n, "agent update")
            }
            WriteOp::DeleteAgent { id } => {
                diesel::delete(api_tokens::table.filter(api_tokens::agent_id.eq(id))).execute(conn)?;
                // The inbox goes with its agent; what it sent stays in the other inboxes.
                diesel::delete(messages::table.filter(messages::to_agent_id.eq(id))).execute(conn)?;
                let n = diesel::delete(agents::table.find(id)).execute(conn)?;
                expect_one(n, "agent delete")
            }
            WriteOp::InsertToken(row) => diesel::insert_into(api_tokens::table)
                .values(row)
                .execute(conn)
                .map(drop),
            WriteOp::SetAgentToken { agent_id, token_hash } => {
                let n = diesel::update(api_tokens::table.filter(api_tokens::agent_id.eq(agent_id)))
                    .set(api_tokens::token_hash.eq(token_hash))
                    .execute(conn)?;
                expect_one(n, "token rotation")
            }
            WriteOp::ReplaceAdminToken(row) => {
                diesel::delete(api_tokens::table.filter(api_tokens::kind.eq("admin"))).execute(conn)?;
                diesel::insert_into(api_tokens::table)
                    .values(row)
                    .execute(conn)
                    .map(drop)
            }
            WriteOp::InsertTask(row) => diesel::insert_into(tasks::table).values(row).execute(conn).map(drop),
            WriteOp::UpdateTask(row) => {
                let n = diesel::update(tasks::table.find(&row.id)).set(row).execute(conn)?;
                expect_one(n, "task update")
            }
            WriteOp::DeleteTask { id } => {
                diesel::delete(
                    task_dependencies::table.filter(
                        task_dependencies::task_id
                            .eq(id)
                            .or(task_dependencies::blocker_id.eq(id)),
                    ),
                )
                .execute(conn)?;
                diesel::update(tasks::table.filter(tasks::parent_id.eq(id)))
                    .set(tasks::parent_id.eq(None::<String>))
                    .execute(conn)?;
                let n = diesel::delete(tasks::table.find(id)).execute(conn)?;
                expect_one(n, "task delete")
            }
            WriteOp::InsertDependency(row) => diesel::insert_into(task_dependencies::table)
                .values(row)
                .execute(conn)
                .map(drop),
            WriteOp::DeleteDependency { task_id, blocker_id } => {
                let n = diesel::delete(task_dependencies::table.find((task_id, blocker_id))).execute(conn)?;
                expect_one(n, "dependency delete")
            }
            WriteOp::InsertActivity(row) => diesel::insert_into(activities::table)
                .values(row)
                .execute(conn)
                .map(drop),
            WriteOp::InsertMessage(row) => diesel::insert_into(messages::table).values(row).execute(conn).map(drop),
            WriteOp::UpdateMessage(row) => {
                let n = diesel::update(messages::table.find(&row.id)).set(row).execute(conn)?;
                expect_one(n, "message update")
            }
            WriteOp::DeleteMessages { ids } => {
                // Bounded chunks keep each statement under every backend's bind-parameter limit.
                for chunk in ids.chunks(500) {
                    diesel::delete(messages::table.filter(messages::id.eq_any(chunk))).execute(conn)?;
                }
                Ok(())
            }
            WriteOp::InsertTemplate(row) => diesel::insert_into(message_templates::table)
                .values(row)
                .execute(conn)
                .map(drop),
            WriteOp::UpdateTemplate(row) => {
                let n = diesel::update(message_templates::table.find(&row.id))
                    .set(row)
                    .execute(conn)?;
                expect_one(n, "template update")
            }
            WriteOp::DeleteTemplate { id } => {
                let n = diesel::delete(message_templates::table.find(id)).execute(conn)?;
                expect_one(n, "template delete")
            }
            WriteOp::InsertBreach(row) => diesel::insert_into(slo_breaches::table)
                .values(row)
                .execute(conn)
                .map(drop),
            WriteOp::InsertRule(row) => diesel::insert_into(escalation_rules::table)
                .values(row)
                .execute(conn)
                .map(drop),
            WriteOp::UpdateRule(row) => {
                let n = diesel::update(escalation_rules::table.find(&row.id))
                    .set(row)
                    .execute(conn)?;
                expect_one(n, "rule update")
            }
            WriteOp::DeleteRule { id } => {
                let n = diesel::delete(escalation_rules::table.find(id)).execute(conn)?;
                expect_one(n, "rule delete")
            }
            WriteOp::InsertEscalation(row) => diesel::insert_into(escalations::table)
                .values(row)
                .execute(conn)
                .map(drop),
            WriteOp::RecordActions { id, actions } => diesel::update(escalations::table.find(id))
                .set(escalations::actions.eq(actions))
                .execute(conn)
                .map(drop),
            WriteOp::ResolveEscalations { ids, at } => diesel::update(
                escalations::table
                    .filter(escalations::id.eq_any(ids))
                    .filter(escalations::resolved_at.is_null()),
            )
            .set(escalations::resolved_at.eq(Some(*at)))
            .execute(conn)
            .map(drop),
            WriteOp::RateEscalation { id, useful, at } => {
                let n = diesel::update(escalations::table.find(id))
                    .set((
                        escalations::useful.eq(Some(*useful)),
                        escalations::rated_at.eq(Some(*at)),
                    ))
                    .execute(conn)?;
                expect_one(n, "escalation feedback")
            }
            WriteOp::InsertOutbox(row) => {
                // The writer is the only one inserting, inside its transaction: look, then insert. (The
                // multi-backend connection has no portable ON CONFLICT.)
                let written = outbox::table
                    .filter(outbox::dedupe_key.eq(&row.dedupe_key))
                    .select(diesel::dsl::count_star())
                    .first::<i64>(conn)?;
                if written > 0 {
                    return Ok(());
                }
                diesel::insert_into(outbox::table).values(row).execute(conn).map(drop)
            }
            WriteOp::UpdateOutbox(row) => {
                let n = diesel::update(outbox::table.find(&row.id)).set(row).execute(conn)?;
                expect_one(n, "outbox update")
            }
        }
    }
}

struct Batch {
    ops: Vec<WriteOp>,
    reply: oneshot::Sender<Result<(), StoreError>>,
}

enum Command {
    Write(Batch),
    Stop(oneshot::Sender<()>),
}

/// A cloneable handle to the writer thread.
#[derive(Clone)]
pub struct Journal {
    queue: mpsc::Sender<Command>,
    thread: Arc<Mutex<Option<JoinHandle<()>>>>,
}

impl std::fmt::Debug for Journal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Journal").finish_non_exhaustive()
    }
}

/// How many batches may wait in the queue before senders wait (back-pressure), and the most batches one
/// transaction takes.
const QUEUE_CAPACITY: usize = 4096;
const MAX_BATCHES_PER_COMMIT: usize = 256;

impl Journal {
    /// Starts the writer thread on its own connection.
    pub fn start(conn: AnyConnection) -> Result<Journal, StoreError> {
        let (queue, commands) = mpsc::channel(QUEUE_CAPACITY);
        let thread = std::thread::Builder::new()
            .name("mc-journal".into())
            .spawn(move || writer_loop(conn, commands))?;
        Ok(Journal {
            queue,
            thread: Arc::new(Mutex::new(Some(thread))),
        })
    }

    /// Queues the batch at once (so the order of `commit` calls is the order of commits) and resolves once it
    /// is durable, or has failed and changed nothing. Only when the queue is full does queuing wait, and then
    /// order among the waiting callers is not promised.
    pub fn commit(&self, ops: Vec<WriteOp>) -> impl std::future::Future<Output = Result<(), StoreError>> + 'static {
        let (reply, answer) = oneshot::channel();
        let empty = ops.is_empty();
        let pending = if empty {
            Ok(None)
        } else {
            match self.queue.try_send(Command::Write(Batch { ops, reply })) {
                Ok(()) => Ok(None),
                Err(mpsc::error::TrySendError::Full(command)) => Ok(Some(command)),
                Err(mpsc::error::TrySendError::Closed(_)) => Err(StoreError::Closed),
            }
        };
        let queue = self.queue.clone();
        async move {
            if empty {
                return Ok(());
            }
            if let Some(command) = pending? {
                queue.send(command).await.map_err(|_| StoreError::Closed)?;
            }
            answer.await.map_err(|_| StoreError::Closed)?
        }
    }

    /// Commits everything queued so far, then stops the writer. Later commits fail with `Closed`.
    pub async fn stop(&self) {
        let (done, finished) = oneshot::channel();
        if self.queue.send(Command::Stop(done)).await.is_ok() {
            let _ = finished.await;
        }
        let handle = self.thread.lock().ok().and_then(|mut guard| guard.take());
        if let Some(handle) = handle {
            let _ = tokio::task::spawn_blocking(move || handle.join()).await;
        }
    }
}

fn writer_loop(mut conn: AnyConnection, mut commands: mpsc::Receiver<Command>) {
    while let Some(first) = commands.blocking_recv() {
        let mut batches = Vec::new();
        let mut stop = None;
        match first {
            Command::Write(batch) => batches.push(batch),
            Command::Stop(done) => stop = Some(done),
        }
        while stop.is_none() && batches.len() < MAX_BATCHES_PER_COMMIT {
            match commands.try_recv() {
                Ok(Command::Write(batch)) => batches.push(batch),
                Ok(Command::Stop(done)) => stop = Some(done),
                Err(_) => break,
            }
        }
        if !batches.is_empty() {
            commit_group(&mut conn, batches);
        }
        if let Some(done) = stop {
            commands.close();
            while let Ok(Command::Write(batch)) = commands.try_recv() {
                let _ = batch.reply.send(Err(StoreError::Closed));
            }
            let _ = done.send(());
            return;
        }
    }
}

/// One transaction for the group, one savepoint per batch; answers in arrival order after the commit.
fn commit_group(conn: &mut AnyConnection, batches: Vec<Batch>) {
    let started = std::time::Instant::now();
    let mut outcomes: Vec<Result<(), String>> = Vec::with_capacity(batches.len());
    let committed = conn.transaction::<_, diesel::result::Error, _>(|conn| {
        for batch in &batches {
            let outcome = conn.transaction::<_, diesel::result::Error, _>(|conn| {
                for op in &batch.ops {
                    op.apply(conn)?;
                }
                Ok(())
            });
            outcomes.push(outcome.map_err(|e| e.to_string()));
        }
        Ok(())
    });
    let ops = batches.iter().map(|batch| batch.ops.len()).sum();
    observability::journal_commit(batches.len(), ops, started.elapsed());
    match committed {
        Ok(()) => {
            for (batch, outcome) in batches.into_iter().zip(outcomes) {
                let _ = batch.reply.send(outcome.map_err(StoreError::Write));
            }
        }
        Err(e) => {
            log::error!("journal commit failed: {e}");
            let message = e.to_string();
            for batch in batches {
                let _ = batch.reply.send(Err(StoreError::Write(message.clone())));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{task, Principal};
    use crate::store::{queries, DatabaseUrl, Store, StoreOptions};
    use futures_util::future::join_all;

    fn open_store(dir: &tempfile::TempDir) -> Store {
        let url = DatabaseUrl::Sqlite(dir.path().join("journal.db"));
        Store::open(&url, &StoreOptions::default()).expect("store opens")
    }

    fn sample_task(id: &str, title: &str) -> Task {
        let draft: task::TaskDraft = serde_json::from_value(serde_json::json!({ "title": title })).expect("draft");
        task::create(draft, id.to_string(), Principal::Admin.label(), 1).expect("task")
    }

    #[actix_rt::test]
    async fn batches_commit_in_submission_order() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = open_store(&dir);
        let journal = Journal::start(store.writer_connection().expect("writer")).expect("journal");
        let mut versions = vec![WriteOp::insert_task(&sample_task("t1", "v0"))];
        versions.extend((1..=200).map(|n| WriteOp::update_task(&sample_task("t1", &format!("v{n}")))));
        // Submitted together: the journal groups them into few transactions but must keep their order.
        let outcomes = join_all(versions.into_iter().map(|op| journal.commit(vec![op]))).await;
        assert!(outcomes.iter().all(Result::is_ok), "{outcomes:?}");
        let stored = store
            .read(|conn| queries::task_by_id(conn, "t1"))
            .await
            .expect("read")
            .expect("task exists");
        assert_eq!(stored.title, "v200");
        journal.stop().await;
    }

    #[actix_rt::test]
    async fn a_failing_batch_fails_alone_and_changes_nothing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = open_store(&dir);
        let journal = Journal::start(store.writer_connection().expect("writer")).expect("journal");
        let first = journal.commit(vec![WriteOp::insert_task(&sample_task("a", "first"))]);
        // The second batch's first op would succeed, its second violates the primary key: neither may stick.
        let duplicate = journal.commit(vec![
            WriteOp::insert_task(&sample_task("b", "half")),
            WriteOp::insert_task(&sample_task("a", "duplicate")),
        ]);
        let third = journal.commit(vec![WriteOp::insert_task(&sample_task("c", "third"))]);
        let (first, duplicate, third) = futures_util::join!(first, duplicate, third);
        assert!(first.is_ok());
        assert!(matches!(duplicate, Err(StoreError::Write(_))), "{duplicate:?}");
        assert!(third.is_ok());
        let titles = store
            .read(|conn| {
                Ok([
                    queries::task_by_id(conn, "a")?.map(|t| t.title),
                    queries::task_by_id(conn, "b")?.map(|t| t.title),
                    queries::task_by_id(conn, "c")?.map(|t| t.title),
                ])
            })
            .await
            .expect("read");
        assert_eq!(titles, [Some("first".to_string()), None, Some("third".to_string())]);
        journal.stop().await;
    }

    #[actix_rt::test]
    async fn commits_after_stop_are_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = open_store(&dir);
        let journal = Journal::start(store.writer_connection().expect("writer")).expect("journal");
        journal
            .commit(vec![WriteOp::insert_task(&sample_task("a", "kept"))])
            .await
            .expect("commit");
        journal.stop().await;
        let refused = journal
            .commit(vec![WriteOp::insert_task(&sample_task("b", "late"))])
            .await;
        assert!(matches!(refused, Err(StoreError::Closed)), "{refused:?}");
        let kept = store.read(|conn| queries::task_by_id(conn, "a")).await.expect("read");
        assert!(kept.is_some());
    }
}
