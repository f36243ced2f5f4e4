-- The catalog cache's counter: the pair of ../0013_cache_version.sql. Statement-level triggers:
-- one bump per statement, also for TRUNCATE and for bulk loads through psql.
CREATE TABLE cache_version (
    id      BIGINT PRIMARY KEY CHECK (id = 1),
    version BIGINT NOT NULL
);
INSERT INTO cache_version (id, version) VALUES (1, 0);

CREATE FUNCTION cache_version_bump() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE cache_version SET version = version + 1 WHERE id = 1;
    RETURN NULL;
END;
$$;

CREATE TRIGGER cache_version_projects AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON projects
    FOR EACH STATEMENT EXECUTE FUNCTION cache_version_bump();
CREATE TRIGGER cache_version_groups AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON groups
    FOR EACH STATEMENT EXECUTE FUNCTION cache_version_bump();
CREATE TRIGGER cache_version_project_members AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON project_members
    FOR EACH STATEMENT EXECUTE FUNCTION cache_version_bump();
CREATE TRIGGER cache_version_group_members AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON group_members
    FOR EACH STATEMENT EXECUTE FUNCTION cache_version_bump();
CREATE TRIGGER cache_version_allowlist_entries AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON allowlist_entries
    FOR EACH STATEMENT EXECUTE FUNCTION cache_version_bump();
CREATE TRIGGER cache_version_outbound_entries AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON outbound_entries
    FOR EACH STATEMENT EXECUTE FUNCTION cache_version_bump();
CREATE TRIGGER cache_version_instance_settings AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON instance_settings
    FOR EACH STATEMENT EXECUTE FUNCTION cache_version_bump();
