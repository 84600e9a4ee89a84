-- 0.2.0 flow control (issue 19, docs/flow.md), first piece: the task
-- columns, the flow-key and debounce indexes, and the old enqueue()/enqueue_many()
-- dropped (their signatures grow; 84b creates them again and re-grants).
ALTER TABLE taskguard.task ADD COLUMN flow_key text, ADD COLUMN debounce_key text;
CREATE INDEX task_ready_flow_key_idx ON taskguard.task (flow_key, queue, (-priority_score), run_at, id)
    WHERE status = 'ready' AND flow_key IS NOT NULL;
CREATE UNIQUE INDEX task_debounce_idx ON taskguard.task ((coalesce(tenant, '')), task_name, debounce_key)
    WHERE status = 'ready' AND debounce_key IS NOT NULL;
DROP FUNCTION taskguard.enqueue(text, jsonb, text, timestamptz, taskguard.priority, text, text,
    text, text, int);
DROP FUNCTION taskguard.enqueue_many(text, jsonb[], text, timestamptz, taskguard.priority, text,
    text, text);
