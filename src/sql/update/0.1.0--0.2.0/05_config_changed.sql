-- 05_config_changed.sql (issue 21): the one trigger function of every table a
-- backend caches (TgConfigCache in src/taskguard.c), created first: flow
-- control's tables (84a) and the 0.1.0 tables (93_one_definition) use it.
CREATE FUNCTION taskguard._config_changed()
RETURNS trigger
AS 'MODULE_PATHNAME', 'taskguard_config_changed'
LANGUAGE C VOLATILE PARALLEL UNSAFE;
REVOKE ALL ON FUNCTION taskguard._config_changed() FROM PUBLIC;
