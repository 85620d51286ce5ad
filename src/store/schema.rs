// One schema for both backends: only portable column types (see diesel.toml and DESIGN §4).

diesel::table! {
    agents (id) {
        id -> Text,
        name -> Text,
        role -> Text,
        level -> Text,
        kind -> Text,
        status -> Text,
        lead_id -> Nullable<Text>,
        specializations -> Text,
        constraints -> Text,
        max_concurrent_tasks -> Integer,
        max_minutes_per_day -> Integer,
        current_task_id -> Nullable<Text>,
        last_heartbeat_at -> Nullable<BigInt>,
        created_at -> BigInt,
        updated_at -> BigInt,
    }
}

diesel::table! {
    api_tokens (id) {
        id -> Text,
        kind -> Text,
        agent_id -> Nullable<Text>,
        token_hash -> Text,
        created_at -> BigInt,
    }
}

diesel::table! {
    tasks (id) {
        id -> Text,
        title -> Text,
        description -> Text,
        status -> Text,
        priority -> Text,
        assignee_id -> Nullable<Text>,
        parent_id -> Nullable<Text>,
        mission_id -> Nullable<Text>,
        pillar_id -> Nullable<Text>,
        tags -> Text,
        sla_tier -> Nullable<Text>,
        slo_ms -> Nullable<BigInt>,
        slo_deadline_at -> Nullable<BigInt>,
        estimated_minutes -> Nullable<Integer>,
        actual_minutes -> Nullable<Integer>,
        requirements -> Text,
        attempts -> Integer,
        failures -> Text,
        escalation_level -> Integer,
        escalated_at -> Nullable<BigInt>,
        completion_notes -> Nullable<Text>,
        status_changed_at -> BigInt,
        started_at -> Nullable<BigInt>,
        completed_at -> Nullable<BigInt>,
        created_by -> Text,
        created_at -> BigInt,
        updated_at -> BigInt,
    }
}

diesel::table! {
    task_dependencies (task_id, blocker_id) {
        task_id -> Text,
        blocker_id -> Text,
        created_by -> Text,
        created_at -> BigInt,
    }
}

diesel::table! {
    activities (id) {
        id -> Text,
        kind -> Text,
        actor_kind -> Text,
        actor_id -> Nullable<Text>,
        agent_id -> Nullable<Text>,
        task_id -> Nullable<Text>,
        message -> Text,
        before_json -> Nullable<Text>,
        after_json -> Nullable<Text>,
        created_at -> BigInt,
    }
}

diesel::table! {
    messages (id) {
        id -> Text,
        sender_kind -> Text,
        from_agent_id -> Nullable<Text>,
        from_agent_name -> Text,
        to_agent_id -> Text,
        to_agent_name -> Text,
        kind -> Text,
        priority -> Text,
        subject -> Text,
        body -> Text,
        task_id -> Nullable<Text>,
        related_task_ids -> Text,
        data -> Nullable<Text>,
        read_at -> Nullable<BigInt>,
        acknowledged_at -> Nullable<BigInt>,
        action_taken -> Nullable<Text>,
        ack_deadline_at -> Nullable<BigInt>,
        escalation_action -> Nullable<Text>,
        escalated_at -> Nullable<BigInt>,
        reply_to_id -> Nullable<Text>,
        idempotency_key -> Nullable<Text>,
        created_at -> BigInt,
        expires_at -> BigInt,
    }
}

diesel::table! {
    message_templates (id) {
        id -> Text,
        name -> Text,
        kind -> Text,
        priority -> Text,
        subject_template -> Text,
        body_template -> Text,
        required_vars -> Text,
        optional_vars -> Text,
        created_at -> BigInt,
        updated_at -> BigInt,
    }
}

diesel::table! {
    slo_breaches (id) {
        id -> Text,
        task_id -> Text,
        task_title -> Text,
        agent_id -> Nullable<Text>,
        kind -> Text,
        sla_tier -> Nullable<Text>,
        slo_ms -> BigInt,
        deadline_at -> BigInt,
        detected_at -> BigInt,
        escalated_at -> Nullable<BigInt>,
    }
}

diesel::table! {
    escalation_rules (id) {
        id -> Text,
        name -> Text,
        description -> Text,
        enabled -> Bool,
        priority -> Integer,
        cooldown_ms -> BigInt,
        applies_to -> Text,
        triggers -> Text,
        actions -> Text,
        created_at -> BigInt,
        updated_at -> BigInt,
    }
}

diesel::table! {
    escalations (id) {
        id -> Text,
        rule_id -> Nullable<Text>,
        rule_name -> Text,
        task_id -> Nullable<Text>,
        level -> Integer,
        trigger_kind -> Text,
        reason -> Text,
        actions -> Text,
        triggered_at -> BigInt,
        resolved_at -> Nullable<BigInt>,
        useful -> Nullable<Bool>,
        rated_at -> Nullable<BigInt>,
        message_id -> Nullable<Text>,
    }
}

diesel::table! {
    outbox (id) {
        id -> Text,
        kind -> Text,
        dedupe_key -> Text,
        effect -> Text,
        escalation_id -> Nullable<Text>,
        action_index -> Nullable<Integer>,
        task_id -> Nullable<Text>,
        attempts -> Integer,
        next_attempt_at -> BigInt,
        last_error -> Nullable<Text>,
        result -> Nullable<Text>,
        created_at -> BigInt,
        delivered_at -> Nullable<BigInt>,
        dead_at -> Nullable<BigInt>,
    }
}

diesel::allow_tables_to_appear_in_same_query!(
    agents,
    api_tokens,
    tasks,
    task_dependencies,
    activities,
    messages,
    message_templates,
    slo_breaches,
    escalation_rules,
    escalations,
    outbox
);
