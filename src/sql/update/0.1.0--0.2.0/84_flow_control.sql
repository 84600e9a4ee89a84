-- 0.2.0 flow control (issue 19, docs/flow.md), first piece: the task
-- columns and the debounce index, and the old enqueue()/enqueue_many()
-- dropped (their signatures grow; 84b creates them again and re-grants).
ALTER TABLE taskguard.task ADD COLUMN flow_key text, ADD COLUMN debounce_key text;
CREATE UNIQUE INDEX task_debounce_idx ON taskguard.task ((coalesce(tenant, '')), task_name, debounce_key)
    WHERE status = 'ready' AND debounce_key IS NOT NULL;
DROP FUNCTION taskguard.enqueue(text, jsonb, text, timestamptz, taskguard.priority, text, text,
    text, text, int);
DROP FUNCTION taskguard.enqueue_many(text, jsonb[], text, timestamptz, taskguard.priority, text,
    text, text);
