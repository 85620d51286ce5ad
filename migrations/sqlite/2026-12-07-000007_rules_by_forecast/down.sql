-- Back to the share trigger, for a row still as the up migration left it. (An operator's own rules that use
-- slo_at_risk are theirs to change: the older code cannot read that trigger.)
UPDATE escalation_rules
SET description = '75% of the SLO used: warn the assignee.'
WHERE id = '0196a000-0000-7000-8000-000000000103'
  AND triggers = '[{"kind":"slo_at_risk"}]'
  AND description = 'Projected to finish after its SLO deadline at the current pace: warn the assignee.';

UPDATE escalation_rules
SET actions = '[{"kind":"notify_assignee","subject":"SLO deadline approaching","body":"Three quarters of this task''s SLO are used. Finish it, or say what is in the way."}]'
WHERE id = '0196a000-0000-7000-8000-000000000103'
  AND triggers = '[{"kind":"slo_at_risk"}]'
  AND actions = '[{"kind":"notify_assignee","subject":"SLO deadline at risk","body":"At the current pace this task will finish after its SLO deadline. Finish it, hand part of it off, or say what is in the way."}]';

UPDATE escalation_rules
SET triggers = '[{"kind":"slo_consumed","percent":75}]', updated_at = 1795219200000
WHERE id = '0196a000-0000-7000-8000-000000000103'
  AND triggers = '[{"kind":"slo_at_risk"}]';

UPDATE escalation_rules
SET triggers = '[{"kind":"time_in_status","status":"in_progress","durationMs":7200000}]',
    description = 'In progress for more than 2 hours: tell the assignee, then climb the ladder.',
    updated_at = 1795219200000
WHERE id = '0196a000-0000-7000-8000-000000000101'
  AND triggers = '[{"kind":"time_in_status","status":"in_progress","durationMs":7200000,"pastEstimate":true}]';
