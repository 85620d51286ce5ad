DROP INDEX tasks_completed_deadline;
DROP TABLE slo_breaches;
