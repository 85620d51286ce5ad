//! Suitable agents and auto-assignment over HTTP: the hard filters (GPU, internet, memory, suspended, offline)
//! and their counts, the three scoring strategies with hand-computed scores, agents that cannot accept work
//! ranked last, the limit and its validation, auto-assignment (choice, permissions, no suitable agent,
//! finished and unknown tasks), and a ranking that follows live load, the clock, profile changes and restarts.

use crate::common::*;
use crate::on_both_backends;
use mission_control::Clock;
use reqwest::Method;
use serde_json::{json, Value};

const MIN: i64 = 60_000;

/// The GPU / ML task's needs.
fn ml_requirements() -> Value {
    json!({"requiresGpu": true, "minMemoryMb": 8192, "capabilities": ["machine_learning", "python", "pytorch"]})
}

fn suitable_path(task_id: &str, query: &str) -> String {
    format!("/api/tasks/{task_id}/suitable-agents{query}")
}

fn auto_assign_path(task_id: &str, query: &str) -> String {
    format!("/api/tasks/{task_id}/auto-assign{query}")
}

/// The ranking for a task, read as the admin.
async fn suitable(app: &TestApp, task_id: &str, query: &str) -> Value {
    app.admin(Method::GET, &suitable_path(task_id, query), None)
        .await
        .expect(200)
}

async fn auto_assign(app: &TestApp, task_id: &str, query: &str, token: Option<&str>) -> Reply {
    app.call(Method::POST, &auto_assign_path(task_id, query), token, None)
        .await
}

#[track_caller]
fn num(value: &Value) -> f64 {
    match value.as_f64() {
        Some(n) => n,
        None => panic!("expected a number, got {value}"),
    }
}

fn candidates(ranking: &Value) -> Vec<Value> {
    array(&ranking["candidates"])
}

fn names(ranking: &Value) -> Vec<String> {
    candidates(ranking).iter().map(|c| text(&c["agentName"])).collect()
}

fn scores(ranking: &Value) -> Vec<f64> {
    candidates(ranking).iter().map(|c| num(&c["score"])).collect()
}

fn ranks(ranking: &Value) -> Vec<i64> {
    candidates(ranking).iter().map(|c| int(&c["rank"])).collect()
}

fn accepting(ranking: &Value) -> Vec<bool> {
    candidates(ranking)
        .iter()
        .map(|c| c["canAcceptWork"].as_bool().expect("canAcceptWork"))
        .collect()
}

/// The candidate with this name.
#[track_caller]
fn candidate(ranking: &Value, name: &str) -> Value {
    match candidates(ranking).into_iter().find(|c| c["agentName"] == name) {
        Some(c) => c,
        None => panic!("{name} is not among the candidates: {ranking}"),
    }
}

fn excluded(no_gpu: u64, no_internet: u64, memory: u64, suspended: u64, offline: u64) -> Value {
    json!({"noGpu": no_gpu, "noInternet": no_internet, "notEnoughMemory": memory,
        "suspended": suspended, "offline": offline})
}

fn gpu(memory_mb: i64) -> Value {
    json!({"canRunGpu": true, "maxMemoryMb": memory_mb})
}

/// Gives `agent` a task of `minutes` and has the agent claim it, so it is in progress from now.
async fn busy(app: &TestApp, agent: &str, token: &str, minutes: i64) -> Value {
    let work = app
        .task(json!({"title": format!("{agent} work"), "assigneeId": agent, "estimatedMinutes": minutes}))
        .await;
    let claimed = app
        .call(Method::POST, &format!("/api/agents/{agent}/claim"), Some(token), None)
        .await
        .expect(200);
    assert_eq!(claimed["id"], work["id"]);
    assert_eq!(claimed["status"], "in_progress");
    claimed
}

async fn suspend(app: &TestApp, agent: &str) {
    let patched = app
        .admin(
            Method::PATCH,
            &format!("/api/agents/{agent}"),
            Some(json!({"status": "suspended"})),
        )
        .await
        .expect(200);
    assert_eq!(patched["status"], "suspended");
}

/// Seven agents around one GPU / ML task. Only four pass the hard filters.
struct MlFleet {
    task_id: String,
    now: i64,
    ace: Value,
    ace_token: String,
    torch: Value,
    torch_token: String,
}

async fn ml_fleet(app: &TestApp) -> MlFleet {
    let all_skills = json!(["machine_learning", "python", "pytorch"]);
    // ace: every skill (in other letter case, plus one extra), 300 of 480 minutes in progress.
    let (ace, ace_token) = app
        .register(json!({"name": "ace", "role": "ml-engineer", "level": "lead",
            "specializations": ["Machine_Learning", "PyTorch", "PYTHON", "sql"],
            "constraints": gpu(16384), "maxConcurrentTasks": 3}))
        .await;
    // torch: two of three skills, exactly the minimum memory, idle.
    let (torch, torch_token) = app
        .register(json!({"name": "torch", "specializations": ["python", "pytorch"],
            "constraints": gpu(8192), "maxConcurrentTasks": 2}))
        .await;
    // lite: one of three skills; idle, with a 30-minute P1 task queued ahead of any P2 task.
    app.register(json!({"name": "lite", "specializations": ["machine_learning"],
        "constraints": gpu(12288), "maxConcurrentTasks": 2}))
        .await;
    // maxed: every skill, but its one concurrent slot is taken.
    let (_, maxed_token) = app
        .register(json!({"name": "maxed", "specializations": all_skills,
            "constraints": gpu(32768), "maxConcurrentTasks": 1}))
        .await;
    // Left out by the hard filters, despite every skill: no GPU, too little memory, suspended.
    app.register(json!({"name": "cpuonly", "specializations": all_skills,
        "constraints": {"canRunGpu": false, "maxMemoryMb": 65536}, "maxConcurrentTasks": 2}))
        .await;
    app.register(json!({"name": "smallmem", "specializations": all_skills,
        "constraints": gpu(8191), "maxConcurrentTasks": 2}))
        .await;
    app.register(json!({"name": "benched", "specializations": all_skills,
        "constraints": gpu(16384), "maxConcurrentTasks": 2}))
        .await;
    suspend(app, "benched").await;

    busy(app, "ace", &ace_token, 300).await;
    busy(app, "maxed", &maxed_token, 60).await;
    let queued = app
        .task(json!({"title": "Label data", "assigneeId": "lite", "priority": "P1", "estimatedMinutes": 30}))
        .await;
    assert_eq!(queued["status"], "ready");

    let task = app
        .task(
            json!({"title": "Fine-tune model", "status": "ready", "estimatedMinutes": 60,
            "requirements": ml_requirements()}),
        )
        .await;
    let mut stored = ml_requirements();
    stored["requiresInternet"] = json!(false);
    assert_eq!(task["requirements"], stored, "omitted requirements take their defaults");
    MlFleet {
        task_id: id(&task),
        now: app.clock.now_ms(),
        ace,
        ace_token,
        torch,
        torch_token,
    }
}

async fn gpu_ml_task_ranks_qualifying_agents_per_strategy(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let fleet = ml_fleet(&app).await;
    let now = fleet.now;

    // Skill match (3 required): ace 3/3 = 100, torch 2/3 = 66.7, lite 1/3 = 33.3, maxed 3/3 = 100.
    // Utilization (in-progress minutes / 480): ace 300/480 = 62.5 %, torch 0, lite 0 (queued work is not
    // load), maxed 60/480 = 12.5 %, but maxed has 1 of 1 concurrent tasks and cannot accept work.
    let best = suitable(&app, &fleet.task_id, "?strategy=best_fit").await;
    assert_eq!(best["taskId"], fleet.task_id.as_str());
    assert_eq!(best["strategy"], "best_fit");
    assert_eq!(best["eligible"], 4, "{best}");
    assert_eq!(best["excluded"], excluded(1, 0, 1, 1, 0), "{best}");
    assert_eq!(names(&best), ["ace", "torch", "lite", "maxed"], "{best}");
    assert_eq!(ranks(&best), [1, 2, 3, 4]);
    assert_eq!(scores(&best), [100.0, 66.7, 33.3, 100.0], "{best}");
    assert_eq!(accepting(&best), [true, true, true, false]);

    let ace = candidate(&best, "ace");
    assert_eq!(ace["agentId"], fleet.ace["id"]);
    assert_eq!(ace["role"], "ml-engineer");
    assert_eq!(ace["level"], "lead");
    assert_eq!(num(&ace["skillMatch"]), 100.0);
    assert_eq!(ace["missingCapabilities"], json!([]), "matching ignores letter case");
    assert_eq!(num(&ace["utilizationPercent"]), 62.5);
    assert_eq!(ace["inProgressCount"], 1);
    assert_eq!(ace["maxConcurrentTasks"], 3);
    assert_eq!(int(&ace["availableAt"]), now + 300 * MIN);
    assert_eq!(int(&ace["projectedStartAt"]), now + 300 * MIN);
    assert_eq!(text(&ace["reason"]), "100% skill match (3 of 3); 62.5% utilized");

    let torch = candidate(&best, "torch");
    assert_eq!(torch["agentId"], fleet.torch["id"]);
    assert_eq!(num(&torch["skillMatch"]), 66.7);
    assert_eq!(torch["missingCapabilities"], json!(["machine_learning"]));
    assert_eq!(num(&torch["utilizationPercent"]), 0.0);
    assert_eq!(torch["inProgressCount"], 0);
    assert_eq!(int(&torch["availableAt"]), now);
    assert_eq!(int(&torch["projectedStartAt"]), now);
    assert_eq!(text(&torch["reason"]), "67% skill match (2 of 3); 0% utilized");

    let lite = candidate(&best, "lite");
    assert_eq!(num(&lite["skillMatch"]), 33.3);
    assert_eq!(lite["missingCapabilities"], json!(["python", "pytorch"]));
    assert_eq!(num(&lite["utilizationPercent"]), 0.0);
    // Its P1 task is claimed before this P2 one.
    assert_eq!(int(&lite["availableAt"]), now + 30 * MIN);
    assert_eq!(int(&lite["projectedStartAt"]), now + 30 * MIN);

    let maxed = candidate(&best, "maxed");
    assert_eq!(maxed["canAcceptWork"], false);
    assert_eq!(maxed["inProgressCount"], 1);
    assert_eq!(maxed["maxConcurrentTasks"], 1);
    assert_eq!(num(&maxed["utilizationPercent"]), 12.5);
    assert_eq!(int(&maxed["projectedStartAt"]), now + 60 * MIN);
    let reason = text(&maxed["reason"]);
    assert!(
        reason.starts_with("cannot accept work: 1 of 1 concurrent tasks in progress"),
        "{reason}"
    );
    for c in candidates(&best).iter().take(3) {
        assert!(!text(&c["reason"]).starts_with("cannot accept work"), "{c}");
    }

    // balanced = 0.6 × skill + 0.4 × (100 − committed), committed = utilization + queued ready work:
    //   torch 0.6 × 66.67 + 0.4 × 100  = 40 + 40   = 80.0
    //   ace   0.6 × 100   + 0.4 × 37.5 = 60 + 15   = 75.0
    //   lite  0.6 × 33.33 + 0.4 × 93.75 = 20 + 37.5 = 57.5 (30 minutes queued of 480)
    //   maxed 0.6 × 100   + 0.4 × 87.5 = 60 + 35   = 95.0, but it cannot accept work: last.
    let balanced = suitable(&app, &fleet.task_id, "?strategy=balanced").await;
    assert_eq!(balanced["strategy"], "balanced");
    assert_eq!(balanced["eligible"], 4);
    assert_eq!(balanced["excluded"], excluded(1, 0, 1, 1, 0));
    assert_eq!(names(&balanced), ["torch", "ace", "lite", "maxed"], "{balanced}");
    assert_eq!(ranks(&balanced), [1, 2, 3, 4]);
    assert_eq!(scores(&balanced), [80.0, 75.0, 57.5, 95.0], "{balanced}");
    assert_eq!(accepting(&balanced), [true, true, true, false]);
    assert_eq!(
        text(&candidate(&balanced, "ace")["reason"]),
        "100% skill match (3 of 3), 37.5% free capacity; 62.5% utilized"
    );
    // The skill match is reported whatever the strategy.
    assert_eq!(num(&candidate(&balanced, "torch")["skillMatch"]), 66.7);

    // The default strategy is balanced.
    let default = suitable(&app, &fleet.task_id, "").await;
    assert_eq!(default, balanced);

    // fastest = 100 × (1 − wait / 1440 min):
    //   torch starts now:                     100.0
    //   lite after its 30-min P1 task:        100 × (1 − 30/1440)  = 97.9
    //   ace after 300 min in progress:        100 × (1 − 300/1440) = 79.2
    //   maxed after 60 min: 100 × (1 − 60/1440) = 95.8, but it cannot accept work: last.
    let fastest = suitable(&app, &fleet.task_id, "?strategy=fastest").await;
    assert_eq!(fastest["strategy"], "fastest");
    assert_eq!(fastest["eligible"], 4);
    assert_eq!(names(&fastest), ["torch", "lite", "ace", "maxed"], "{fastest}");
    assert_eq!(ranks(&fastest), [1, 2, 3, 4]);
    assert_eq!(scores(&fastest), [100.0, 97.9, 79.2, 95.8], "{fastest}");
    assert_eq!(accepting(&fastest), [true, true, true, false]);
    assert_eq!(
        text(&candidate(&fastest, "torch")["reason"]),
        "can start now; 0% utilized"
    );
    assert_eq!(
        text(&candidate(&fastest, "lite")["reason"]),
        "can start in 30 min; 0% utilized"
    );

    // Reading the ranking changes nothing.
    let task = get_task(&app, &fleet.task_id).await;
    assert_eq!(task["assigneeId"], Value::Null);
    assert_eq!(task["status"], "ready");
    app.stop().await;
}

async fn default_limit_cut_and_tie_breaks(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    // w1 carries 48 of 480 minutes (10 %); the others are idle. Nothing is required, so every best_fit
    // score is 100 and ties break by utilization, then by name.
    let (_, w1_token) = app.agent("w1").await;
    for name in ["w7", "w6", "w5", "w4", "w3", "w2"] {
        app.agent(name).await;
    }
    busy(&app, "w1", &w1_token, 48).await;
    let task = app.task(json!({"title": "Anything", "status": "ready"})).await;
    let tid = id(&task);

    let all = suitable(&app, &tid, "?strategy=best_fit&limit=100").await;
    assert_eq!(all["eligible"], 7);
    assert_eq!(names(&all), ["w2", "w3", "w4", "w5", "w6", "w7", "w1"], "{all}");
    assert_eq!(scores(&all), [100.0; 7]);
    assert_eq!(ranks(&all), [1, 2, 3, 4, 5, 6, 7]);
    assert_eq!(
        text(&candidate(&all, "w1")["reason"]),
        "no capabilities required; 10% utilized"
    );

    // Default limit 5; eligible still counts every agent that passed the filters.
    let default = suitable(&app, &tid, "?strategy=best_fit").await;
    assert_eq!(default["eligible"], 7);
    assert_eq!(names(&default), ["w2", "w3", "w4", "w5", "w6"]);
    assert_eq!(ranks(&default), [1, 2, 3, 4, 5]);

    let two = suitable(&app, &tid, "?strategy=best_fit&limit=2").await;
    assert_eq!(names(&two), ["w2", "w3"]);
    assert_eq!(two["eligible"], 7);
    let one = suitable(&app, &tid, "?limit=1").await;
    assert_eq!(one["strategy"], "balanced");
    assert_eq!(candidates(&one).len(), 1);
    assert_eq!(one["excluded"], excluded(0, 0, 0, 0, 0));

    // balanced: idle agents 0.6 × 100 + 0.4 × 100 = 100; w1 60 + 0.4 × 90 = 96.
    let balanced = suitable(&app, &tid, "?limit=100").await;
    assert_eq!(scores(&balanced), [100.0, 100.0, 100.0, 100.0, 100.0, 100.0, 96.0]);
    assert_eq!(names(&balanced)[6], "w1");
    app.stop().await;
}

async fn bad_parameters_are_refused(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    app.agent("alice").await;
    let task = app.task(json!({"title": "Something", "status": "ready"})).await;
    let tid = id(&task);

    for query in ["?limit=0", "?limit=101", "?limit=-1", "?limit=ten", "?limit=1.5"] {
        let reply = app.admin(Method::GET, &suitable_path(&tid, query), None).await;
        assert_eq!(reply.status.as_u16(), 400, "{query}: {}", reply.body);
        assert_eq!(reply.code(), "validation_failed", "{query}: {}", reply.body);
    }
    for query in ["?strategy=quickest", "?strategy=", "?colour=red"] {
        let reply = app.admin(Method::GET, &suitable_path(&tid, query), None).await;
        assert_eq!(reply.status.as_u16(), 400, "{query}: {}", reply.body);
        assert_eq!(reply.code(), "validation_failed", "{query}: {}", reply.body);
        let reply = auto_assign(&app, &tid, query, Some(ADMIN_TOKEN)).await;
        assert_eq!(reply.status.as_u16(), 400, "{query}: {}", reply.body);
        assert_eq!(reply.code(), "validation_failed", "{query}: {}", reply.body);
    }
    // The bounds themselves are accepted.
    suitable(&app, &tid, "?limit=1").await;
    suitable(&app, &tid, "?limit=100&strategy=fastest").await;

    // Unknown task.
    app.admin(Method::GET, &suitable_path("no-such-task", ""), None)
        .await
        .expect_error(404, "task_not_found");
    auto_assign(&app, "no-such-task", "", Some(ADMIN_TOKEN))
        .await
        .expect_error(404, "task_not_found");

    // No token.
    app.call(Method::GET, &suitable_path(&tid, ""), None, None)
        .await
        .expect_error(401, "unauthorized");
    auto_assign(&app, &tid, "", None)
        .await
        .expect_error(401, "unauthorized");

    // None of the refusals assigned the task.
    assert_eq!(get_task(&app, &tid).await["assigneeId"], Value::Null);
    app.stop().await;
}

async fn internet_and_offline_filters(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    app.agent("online").await;
    app.register(json!({"name": "airgap", "constraints": {"hasInternet": false}}))
        .await;
    let (_, ghost_token) = app.agent("ghost").await;
    let beat = app
        .call(Method::POST, "/api/agents/ghost/heartbeat", Some(&ghost_token), None)
        .await
        .expect(200);
    assert_eq!(beat["status"], "active");
    let web = app
        .task(json!({"title": "Crawl", "status": "ready", "requirements": {"requiresInternet": true}}))
        .await;
    let plain = app.task(json!({"title": "Local", "status": "ready"})).await;

    let before = suitable(&app, &id(&web), "").await;
    assert_eq!(names(&before), ["ghost", "online"], "{before}");
    assert_eq!(before["excluded"], excluded(0, 1, 0, 0, 0));

    // ghost misses its heartbeat for more than the 5-minute timeout.
    app.clock.advance_ms(300_001);
    let report = app.tick().await;
    assert_eq!(report.went_offline, ["ghost"]);

    let web_ranking = suitable(&app, &id(&web), "").await;
    assert_eq!(web_ranking["eligible"], 1, "{web_ranking}");
    assert_eq!(names(&web_ranking), ["online"]);
    assert_eq!(web_ranking["excluded"], excluded(0, 1, 0, 0, 1), "{web_ranking}");
    let online = candidate(&web_ranking, "online");
    assert_eq!(num(&online["skillMatch"]), 100.0);
    assert_eq!(online["missingCapabilities"], json!([]));
    assert!(
        text(&online["reason"]).starts_with("no capabilities required"),
        "{online}"
    );

    // Internet is required only when the task asks for it: the air-gapped agent may take other work.
    let plain_ranking = suitable(&app, &id(&plain), "?strategy=best_fit").await;
    assert_eq!(names(&plain_ranking), ["airgap", "online"], "{plain_ranking}");
    assert_eq!(plain_ranking["excluded"], excluded(0, 0, 0, 0, 1));

    // Offline agents are not auto-assigned either.
    let assigned = auto_assign(&app, &id(&web), "", Some(ADMIN_TOKEN)).await.expect(200);
    assert_eq!(assigned["chosen"]["agentName"], "online");

    // A new heartbeat brings ghost back.
    app.call(Method::POST, "/api/agents/ghost/heartbeat", Some(&ghost_token), None)
        .await
        .expect(200);
    let back = suitable(&app, &id(&plain), "?strategy=best_fit").await;
    assert_eq!(names(&back), ["airgap", "ghost", "online"], "{back}");
    assert_eq!(back["excluded"], excluded(0, 0, 0, 0, 0));
    app.stop().await;
}

async fn agents_that_cannot_accept_work_rank_last(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    // Daily budgets of 100 minutes make utilization equal to the minutes in progress.
    let (_, t79) = app.register(json!({"name": "busy79", "maxMinutesPerDay": 100})).await;
    let (_, t80) = app.register(json!({"name": "busy80", "maxMinutesPerDay": 100})).await;
    app.agent("queued").await;
    busy(&app, "busy79", &t79, 79).await;
    busy(&app, "busy80", &t80, 80).await;
    // 600 minutes of P1 work queued for `queued`, ahead of any P2 task; queued work is not load.
    app.task(json!({"title": "Backlog burn", "assigneeId": "queued", "priority": "P1", "estimatedMinutes": 600}))
        .await;
    let task = app
        .task(json!({"title": "New work", "status": "ready", "estimatedMinutes": 10}))
        .await;
    let tid = id(&task);

    // fastest: busy79 waits 79 min → 100 × (1 − 79/1440) = 94.5; queued waits 600 min → 58.3;
    // busy80 would start after 80 min (94.4) but is at the 80 % limit, so it comes after both.
    let fastest = suitable(&app, &tid, "?strategy=fastest").await;
    assert_eq!(names(&fastest), ["busy79", "queued", "busy80"], "{fastest}");
    assert_eq!(scores(&fastest), [94.5, 58.3, 94.4], "{fastest}");
    assert_eq!(accepting(&fastest), [true, true, false]);
    let at_limit = candidate(&fastest, "busy80");
    assert_eq!(num(&at_limit["utilizationPercent"]), 80.0);
    assert_eq!(at_limit["inProgressCount"], 1);
    assert_eq!(
        text(&at_limit["reason"]),
        "cannot accept work: 80% utilized (80 of 100 minutes), the limit is 80%; can start in 80 min"
    );
    let queued = candidate(&fastest, "queued");
    assert_eq!(num(&queued["utilizationPercent"]), 0.0);
    assert_eq!(int(&queued["projectedStartAt"]), app.clock.now_ms() + 600 * MIN);
    assert_eq!(int(&queued["availableAt"]), app.clock.now_ms() + 600 * MIN);

    // balanced counts queued work against free capacity: queued's 600 queued minutes fill its 100-minute day,
    // 60 + 0.4 × 0 = 60; busy79 60 + 0.4 × 21 = 68.4; busy80 60 + 0.4 × 20 = 68 (last anyway).
    let balanced = suitable(&app, &tid, "?strategy=balanced").await;
    assert_eq!(names(&balanced), ["busy79", "queued", "busy80"], "{balanced}");
    assert_eq!(scores(&balanced), [68.4, 60.0, 68.0], "{balanced}");

    // best_fit: all 100; the two that can accept work by utilization, then busy80.
    let best = suitable(&app, &tid, "?strategy=best_fit").await;
    assert_eq!(names(&best), ["queued", "busy79", "busy80"], "{best}");
    assert_eq!(accepting(&best), [true, true, false]);
    assert!(text(&candidate(&best, "busy80")["reason"]).starts_with("cannot accept work:"));

    // Auto-assign never picks the agent at the limit, even for the fastest strategy.
    let assigned = auto_assign(&app, &tid, "?strategy=fastest", Some(ADMIN_TOKEN))
        .await
        .expect(200);
    assert_eq!(assigned["chosen"]["agentName"], "busy79");
    assert_eq!(assigned["task"]["assigneeId"], assigned["chosen"]["agentId"]);
    app.stop().await;
}

async fn auto_assign_picks_the_top_candidate(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let fleet = ml_fleet(&app).await;
    let ace_id = id(&fleet.ace);
    let torch_id = id(&fleet.torch);

    // best_fit ranks ace first (100); maxed also scores 100 but cannot accept work.
    let reply = auto_assign(&app, &fleet.task_id, "?strategy=best_fit", Some(ADMIN_TOKEN))
        .await
        .expect(200);
    assert_eq!(reply["task"]["id"], fleet.task_id.as_str());
    assert_eq!(reply["task"]["assigneeId"], ace_id.as_str());
    assert_eq!(reply["task"]["status"], "ready");
    assert_eq!(reply["chosen"]["agentName"], "ace");
    assert_eq!(reply["chosen"]["agentId"], ace_id.as_str());
    assert_eq!(reply["chosen"]["rank"], 1);
    assert_eq!(num(&reply["chosen"]["score"]), 100.0);
    assert_eq!(reply["chosen"]["canAcceptWork"], true);
    let stored = get_task(&app, &fleet.task_id).await;
    assert_eq!(stored["assigneeId"], ace_id.as_str());

    // The chosen agent's capacity shows the task queued, in claim order.
    let capacity = app
        .admin(Method::GET, &format!("/api/agents/{ace_id}/capacity"), None)
        .await
        .expect(200);
    let ready: Vec<String> = array(&capacity["readyTasks"]).iter().map(id).collect();
    assert_eq!(ready, [fleet.task_id.as_str()], "{capacity}");
    assert_eq!(capacity["readyCount"], 1);

    // The activity feed records the assignment by the admin.
    let feed = app
        .admin(
            Method::GET,
            &format!("/api/activity?taskId={}&kind=task_assigned", fleet.task_id),
            None,
        )
        .await
        .expect(200);
    let rows = array(&feed["items"]);
    assert_eq!(rows.len(), 1, "{feed}");
    assert_eq!(rows[0]["actorKind"], "admin");
    assert_eq!(rows[0]["agentId"], ace_id.as_str());
    assert_eq!(rows[0]["taskId"], fleet.task_id.as_str());
    assert_eq!(rows[0]["message"], "'Fine-tune model' assigned to ace");
    assert_eq!(rows[0]["after"]["assigneeId"], ace_id.as_str());

    // A backlog task with the same needs: fastest picks torch (starts now), and the task becomes ready.
    let second = app
        .task(json!({"title": "Fine-tune v2", "estimatedMinutes": 60, "requirements": ml_requirements()}))
        .await;
    assert_eq!(second["status"], "backlog");
    let reply = auto_assign(&app, &id(&second), "?strategy=fastest", Some(ADMIN_TOKEN))
        .await
        .expect(200);
    assert_eq!(reply["chosen"]["agentName"], "torch");
    assert_eq!(num(&reply["chosen"]["score"]), 100.0);
    assert_eq!(reply["task"]["assigneeId"], torch_id.as_str());
    assert_eq!(reply["task"]["status"], "ready");
    let capacity = app
        .admin(Method::GET, "/api/agents/torch/capacity", None)
        .await
        .expect(200);
    let ready: Vec<String> = array(&capacity["readyTasks"]).iter().map(id).collect();
    assert_eq!(ready, [id(&second)]);

    app.clock.advance_ms(1);
    // The default strategy is balanced: torch again, though the task it was just given now counts as queued
    // work (75, tied with ace's 75, and first on utilization: queued work is not load).
    let third = app
        .task(json!({"title": "Fine-tune v3", "status": "ready", "requirements": ml_requirements()}))
        .await;
    let reply = auto_assign(&app, &id(&third), "", Some(ADMIN_TOKEN)).await.expect(200);
    assert_eq!(reply["chosen"]["agentName"], "torch");
    assert_eq!(num(&reply["chosen"]["score"]), 75.0);

    // The chosen agent can claim what it was given.
    let claimed = app
        .call(Method::POST, "/api/agents/torch/claim", Some(&fleet.torch_token), None)
        .await
        .expect(200);
    assert_eq!(claimed["id"], second["id"], "the older of two P2 tasks first");
    app.stop().await;
}

async fn no_suitable_agent_leaves_the_task_unassigned(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    // Nobody passes the hard filters.
    let (_, cpu_token) = app.register(json!({"name": "cpu", "maxConcurrentTasks": 1})).await;
    app.register(json!({"name": "gpubox", "constraints": gpu(16384)})).await;
    suspend(&app, "gpubox").await;
    let gpu_task = app
        .task(json!({"title": "Render", "status": "ready", "requirements": {"requiresGpu": true}}))
        .await;
    let gid = id(&gpu_task);
    let ranking = suitable(&app, &gid, "").await;
    assert_eq!(ranking["eligible"], 0);
    assert_eq!(ranking["candidates"], json!([]));
    assert_eq!(ranking["excluded"], excluded(1, 0, 0, 1, 0));
    for strategy in ["best_fit", "fastest", "balanced"] {
        let error = auto_assign(&app, &gid, &format!("?strategy={strategy}"), Some(ADMIN_TOKEN))
            .await
            .expect_error(404, "no_suitable_agent");
        let details = &error["error"]["details"];
        assert_eq!(details["excluded"], excluded(1, 0, 0, 1, 0), "{error}");
        assert_eq!(details["candidates"], json!([]), "{error}");
    }

    // Agents pass the filters, but none can accept work.
    let (_, solo_token) = app.register(json!({"name": "solo", "maxConcurrentTasks": 1})).await;
    let (_, tired_token) = app.register(json!({"name": "tired", "maxMinutesPerDay": 100})).await;
    busy(&app, "solo", &solo_token, 30).await;
    busy(&app, "tired", &tired_token, 90).await;
    // cpu fills its one concurrent slot.
    busy(&app, "cpu", &cpu_token, 20).await;

    let plain = app
        .task(json!({"title": "Anything", "status": "ready", "estimatedMinutes": 15}))
        .await;
    let pid = id(&plain);
    let ranking = suitable(&app, &pid, "").await;
    assert_eq!(ranking["eligible"], 3, "{ranking}");
    assert_eq!(accepting(&ranking), [false, false, false], "{ranking}");
    let error = auto_assign(&app, &pid, "", Some(ADMIN_TOKEN))
        .await
        .expect_error(404, "no_suitable_agent");
    let details = &error["error"]["details"];
    assert_eq!(details["excluded"], excluded(0, 0, 0, 1, 0), "{error}");
    let listed = array(&details["candidates"]);
    assert_eq!(listed.len(), 3, "{error}");
    for c in &listed {
        assert_eq!(c["canAcceptWork"], false, "{c}");
        assert!(text(&c["reason"]).starts_with("cannot accept work:"), "{c}");
    }
    let tired = listed
        .iter()
        .find(|c| c["agentName"] == "tired")
        .expect("tired is listed");
    assert!(
        text(&tired["reason"]).starts_with("cannot accept work: 90% utilized (90 of 100 minutes), the limit is 80%"),
        "{tired}"
    );
    let solo = listed
        .iter()
        .find(|c| c["agentName"] == "solo")
        .expect("solo is listed");
    assert!(
        text(&solo["reason"]).starts_with("cannot accept work: 1 of 1 concurrent tasks in progress"),
        "{solo}"
    );

    // Both tasks are left as they were, and no assignment was recorded.
    for tid in [&gid, &pid] {
        let task = get_task(&app, tid).await;
        assert_eq!(task["assigneeId"], Value::Null, "{task}");
        assert_eq!(task["status"], "ready");
        let feed = app
            .admin(
                Method::GET,
                &format!("/api/activity?taskId={tid}&kind=task_assigned"),
                None,
            )
            .await
            .expect(200);
        assert_eq!(feed["items"], json!([]), "{feed}");
    }

    // A newcomer with free capacity gets the work.
    app.agent("fresh").await;
    let assigned = auto_assign(&app, &pid, "", Some(ADMIN_TOKEN)).await.expect(200);
    assert_eq!(assigned["chosen"]["agentName"], "fresh");
    assert_eq!(assigned["chosen"]["rank"], 1);
    app.stop().await;
}

async fn finished_tasks_need_no_agent(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let (_, token) = app.agent("alice").await;
    let done = app
        .task(json!({"title": "Finished", "assigneeId": "alice", "estimatedMinutes": 10}))
        .await;
    app.call(Method::POST, "/api/agents/alice/claim", Some(&token), None)
        .await
        .expect(200);
    app.call(
        Method::POST,
        &format!("/api/tasks/{}/complete", id(&done)),
        Some(&token),
        Some(json!({"outcome": "done"})),
    )
    .await
    .expect(200);
    let cancelled = app.task(json!({"title": "Dropped", "status": "ready"})).await;
    move_to(&app, &id(&cancelled), "cancelled").await.expect(200);

    for tid in [id(&done), id(&cancelled)] {
        for strategy in ["", "?strategy=fastest"] {
            app.admin(Method::GET, &suitable_path(&tid, strategy), None)
                .await
                .expect_error(409, "task_finished");
            auto_assign(&app, &tid, strategy, Some(ADMIN_TOKEN))
                .await
                .expect_error(409, "task_finished");
        }
    }
    assert_eq!(get_task(&app, &id(&cancelled)).await["assigneeId"], Value::Null);
    assert_eq!(get_task(&app, &id(&done)).await["status"], "done");
    app.stop().await;
}

async fn auto_assign_follows_assignment_permissions(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let (best, best_token) = app.register(json!({"name": "best", "specializations": ["rust"]})).await;
    let (other, other_token) = app.agent("other").await;
    let task = app
        .task(json!({"title": "Port to Rust", "status": "ready", "requirements": {"capabilities": ["rust"]}}))
        .await;
    let tid = id(&task);

    // Any caller may read the ranking.
    let ranking = app
        .call(
            Method::GET,
            &suitable_path(&tid, "?strategy=best_fit"),
            Some(&other_token),
            None,
        )
        .await
        .expect(200);
    assert_eq!(names(&ranking), ["best", "other"]);
    assert_eq!(scores(&ranking), [100.0, 0.0]);

    // other may not hand an unassigned task to best.
    auto_assign(&app, &tid, "?strategy=best_fit", Some(&other_token))
        .await
        .expect_error(403, "forbidden");
    assert_eq!(get_task(&app, &tid).await["assigneeId"], Value::Null);

    // Once other holds the task, best may not take it from other ...
    app.admin(
        Method::POST,
        &format!("/api/tasks/{tid}/assign"),
        Some(json!({"agentId": "other"})),
    )
    .await
    .expect(200);
    auto_assign(&app, &tid, "?strategy=best_fit", Some(&best_token))
        .await
        .expect_error(403, "forbidden");
    assert_eq!(get_task(&app, &tid).await["assigneeId"], other["id"]);

    // ... but other, the current assignee, may pass it on to the best candidate.
    let passed = auto_assign(&app, &tid, "?strategy=best_fit", Some(&other_token))
        .await
        .expect(200);
    assert_eq!(passed["task"]["assigneeId"], best["id"]);
    assert_eq!(passed["chosen"]["agentName"], "best");

    // An agent that is itself the top candidate may take an unassigned task.
    let second = app
        .task(json!({"title": "Port more", "status": "ready", "requirements": {"capabilities": ["rust"]}}))
        .await;
    let taken = auto_assign(&app, &id(&second), "?strategy=best_fit", Some(&best_token))
        .await
        .expect(200);
    assert_eq!(taken["task"]["assigneeId"], best["id"]);
    let feed = app
        .admin(
            Method::GET,
            &format!("/api/activity?taskId={}&kind=task_assigned", id(&second)),
            None,
        )
        .await
        .expect(200);
    let rows = array(&feed["items"]);
    assert_eq!(rows.len(), 1, "{feed}");
    assert_eq!(rows[0]["actorKind"], "agent");
    assert_eq!(rows[0]["actorId"], best["id"]);
    assert_eq!(rows[0]["agentId"], best["id"]);
    app.stop().await;
}

async fn ranking_follows_load_clock_and_profile_changes(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let (_, alpha_token) = app
        .register(json!({"name": "alpha", "specializations": ["rust"], "constraints": gpu(8192)}))
        .await;
    app.register(json!({"name": "beta", "specializations": ["rust"]})).await;
    let work = busy(&app, "alpha", &alpha_token, 300).await;
    let task = app
        .task(json!({"title": "Kernel", "status": "ready",
            "requirements": {"requiresGpu": true, "capabilities": ["rust"]}}))
        .await;
    let tid = id(&task);
    let start = app.clock.now_ms();

    // alpha: 300 of 480 minutes left → waits 300 min: 100 × (1 − 300/1440) = 79.2. beta has no GPU.
    let r = suitable(&app, &tid, "?strategy=fastest").await;
    assert_eq!(names(&r), ["alpha"]);
    assert_eq!(scores(&r), [79.2]);
    assert_eq!(r["excluded"], excluded(1, 0, 0, 0, 0));
    assert_eq!(int(&candidate(&r, "alpha")["projectedStartAt"]), start + 300 * MIN);

    // Two hours later 180 minutes remain: 37.5 % utilized, fastest 100 × (1 − 180/1440) = 87.5,
    // balanced 0.6 × 100 + 0.4 × 62.5 = 85.
    app.clock.advance_ms(120 * MIN);
    let now = app.clock.now_ms();
    let r = suitable(&app, &tid, "?strategy=fastest").await;
    assert_eq!(scores(&r), [87.5], "{r}");
    let alpha = candidate(&r, "alpha");
    assert_eq!(num(&alpha["utilizationPercent"]), 37.5);
    assert_eq!(int(&alpha["projectedStartAt"]), now + 180 * MIN);
    assert_eq!(text(&alpha["reason"]), "can start in 180 min; 37.5% utilized");
    let r = suitable(&app, &tid, "?strategy=balanced").await;
    assert_eq!(scores(&r), [85.0], "{r}");

    // beta gets a GPU through its capacity settings and, idle, starts first.
    app.admin(
        Method::PUT,
        "/api/agents/beta/capacity",
        Some(
            json!({"maxConcurrentTasks": 2, "maxMinutesPerDay": 480, "specializations": ["rust"],
            "constraints": {"canRunGpu": true}}),
        ),
    )
    .await
    .expect(200);
    let r = suitable(&app, &tid, "?strategy=fastest").await;
    assert_eq!(names(&r), ["beta", "alpha"], "{r}");
    assert_eq!(scores(&r), [100.0, 87.5]);
    assert_eq!(r["excluded"], excluded(0, 0, 0, 0, 0));

    // alpha finishes its work: both can start now and are idle, so the name decides.
    app.call(
        Method::POST,
        &format!("/api/tasks/{}/complete", id(&work)),
        Some(&alpha_token),
        Some(json!({"outcome": "done"})),
    )
    .await
    .expect(200);
    let r = suitable(&app, &tid, "?strategy=fastest").await;
    assert_eq!(names(&r), ["alpha", "beta"], "{r}");
    assert_eq!(scores(&r), [100.0, 100.0]);
    assert_eq!(num(&candidate(&r, "alpha")["utilizationPercent"]), 0.0);

    // A deleted agent is no candidate.
    app.admin(Method::DELETE, "/api/agents/beta", None).await.expect(200);
    let r = suitable(&app, &tid, "?strategy=fastest").await;
    assert_eq!(names(&r), ["alpha"], "{r}");
    assert_eq!(r["eligible"], 1);

    // 2000 minutes of P1 work queued ahead: a wait of more than a day scores 0, though alpha, with no work
    // in progress, can still accept it.
    app.task(json!({"title": "Long haul", "assigneeId": "alpha", "priority": "P1", "estimatedMinutes": 2000}))
        .await;
    let r = suitable(&app, &tid, "?strategy=fastest").await;
    let alpha = candidate(&r, "alpha");
    assert_eq!(num(&alpha["score"]), 0.0, "{r}");
    assert_eq!(alpha["canAcceptWork"], true);
    assert_eq!(int(&alpha["projectedStartAt"]), app.clock.now_ms() + 2000 * MIN);
    assert_eq!(text(&alpha["reason"]), "can start in 2000 min; 0% utilized");
    app.stop().await;
}

async fn ranking_survives_a_restart(backend: Backend) {
    let Some(app) = spawn_app(backend).await else {
        return;
    };
    let fleet = ml_fleet(&app).await;
    let mut before = Vec::new();
    for strategy in ["best_fit", "balanced", "fastest"] {
        before.push(suitable(&app, &fleet.task_id, &format!("?strategy={strategy}")).await);
    }

    let app = app.restart().await;
    for (strategy, expected) in ["best_fit", "balanced", "fastest"].iter().zip(&before) {
        let after = suitable(&app, &fleet.task_id, &format!("?strategy={strategy}")).await;
        assert_eq!(&after, expected, "{strategy} after a restart");
    }

    // ace's old token still works after the restart and ace may take the task for itself under best_fit.
    let taken = auto_assign(&app, &fleet.task_id, "?strategy=best_fit", Some(&fleet.ace_token))
        .await
        .expect(200);
    assert_eq!(taken["chosen"]["agentName"], "ace");
    assert_eq!(taken["task"]["assigneeId"], fleet.ace["id"]);
    app.stop().await;
}

on_both_backends!(
    gpu_ml_task_ranks_qualifying_agents_per_strategy,
    default_limit_cut_and_tie_breaks,
    bad_parameters_are_refused,
    internet_and_offline_filters,
    agents_that_cannot_accept_work_rank_last,
    auto_assign_picks_the_top_candidate,
    no_suitable_agent_leaves_the_task_unassigned,
    finished_tasks_need_no_agent,
    auto_assign_follows_assignment_permissions,
    ranking_follows_load_clock_and_profile_changes,
    ranking_survives_a_restart,
);
