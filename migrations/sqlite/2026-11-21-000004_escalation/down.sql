DROP TABLE escalations;
DROP TABLE escalation_rules;
