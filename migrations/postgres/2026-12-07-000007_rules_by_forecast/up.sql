-- The default rule "SLO approaching" warns by forecast (trigger slo_at_risk: at the current pace the task is
-- projected to finish after its deadline) instead of by the share of the SLO used, which also fired on tasks
-- that were going to finish in time. Only a row an operator has not changed is touched: its text is updated
-- only where it is still the original, and its trigger only where that is still the original.
UPDATE escalation_rules
SET description = 'Projected to finish after its SLO deadline at the current pace: warn the assignee.'
WHERE id = '0196a000-0000-7000-8000-000000000103'
  AND triggers = '[{"kind":"slo_consumed","percent":75}]'
  AND description = '75% of the SLO used: warn the assignee.';

UPDATE escalation_rules
SET actions = '[{"kind":"notify_assignee","subject":"SLO deadline at risk","body":"At the current pace this task will finish after its SLO deadline. Finish it, hand part of it off, or say what is in the way."}]'
WHERE id = '0196a000-0000-7000-8000-000000000103'
  AND triggers = '[{"kind":"slo_consumed","percent":75}]'
  AND actions = '[{"kind":"notify_assignee","subject":"SLO deadline approaching","body":"Three quarters of this task''s SLO are used. Finish it, or say what is in the way."}]';

UPDATE escalation_rules
SET triggers = '[{"kind":"slo_at_risk"}]', updated_at = 1796601600000
WHERE id = '0196a000-0000-7000-8000-000000000103'
  AND triggers = '[{"kind":"slo_consumed","percent":75}]';

-- "task stuck in progress" counts its two hours from when the task's estimate ran out, so a long task worked
-- at its pace is not called stuck (the estimate is the assignee's own plan; without one, from the start).
UPDATE escalation_rules
SET triggers = '[{"kind":"time_in_status","status":"in_progress","durationMs":7200000,"pastEstimate":true}]',
    description = 'In progress for more than 2 hours past its estimate: tell the assignee, then climb the ladder.',
    updated_at = 1796601600000
WHERE id = '0196a000-0000-7000-8000-000000000101'
  AND triggers = '[{"kind":"time_in_status","status":"in_progress","durationMs":7200000}]'
  AND description = 'In progress for more than 2 hours: tell the assignee, then climb the ladder.';
