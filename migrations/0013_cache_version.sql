-- The catalog cache's counter (src/store/cache.rs): every change to a table whose rows the
-- servers cache bumps it in the change's own transaction, so a read transaction that sees the
-- counter it cached rows under knows they are still exactly what the database holds.
CREATE TABLE cache_version (
    id      INTEGER PRIMARY KEY CHECK (id = 1),
    version INTEGER NOT NULL
);
INSERT INTO cache_version (id, version) VALUES (1, 0);
CREATE TRIGGER cache_version_projects_insert AFTER INSERT ON projects
    BEGIN UPDATE cache_version SET version = version + 1 WHERE id = 1; END;
CREATE TRIGGER cache_version_projects_update AFTER UPDATE ON projects
    BEGIN UPDATE cache_version SET version = version + 1 WHERE id = 1; END;
CREATE TRIGGER cache_version_projects_delete AFTER DELETE ON projects
    BEGIN UPDATE cache_version SET version = version + 1 WHERE id = 1; END;
CREATE TRIGGER cache_version_groups_insert AFTER INSERT ON groups
    BEGIN UPDATE cache_version SET version = version + 1 WHERE id = 1; END;
CREATE TRIGGER cache_version_groups_update AFTER UPDATE ON groups
    BEGIN UPDATE cache_version SET version = version + 1 WHERE id = 1; END;
CREATE TRIGGER cache_version_groups_delete AFTER DELETE ON groups
    BEGIN UPDATE cache_version SET version = version + 1 WHERE id = 1; END;
CREATE TRIGGER cache_version_project_members_insert AFTER INSERT ON project_members
    BEGIN UPDATE cache_version SET version = version + 1 WHERE id = 1; END;
CREATE TRIGGER cache_version_project_members_update AFTER UPDATE ON project_members
    BEGIN UPDATE cache_version SET version = version + 1 WHERE id = 1; END;
CREATE TRIGGER cache_version_project_members_delete AFTER DELETE ON project_members
    BEGIN UPDATE cache_version SET version = version + 1 WHERE id = 1; END;
CREATE TRIGGER cache_version_group_members_insert AFTER INSERT ON group_members
    BEGIN UPDATE cache_version SET version = version + 1 WHERE id = 1; END;
CREATE TRIGGER cache_version_group_members_update AFTER UPDATE ON group_members
    BEGIN UPDATE cache_version SET version = version + 1 WHERE id = 1; END;
CREATE TRIGGER cache_version_group_members_delete AFTER DELETE ON group_members
    BEGIN UPDATE cache_version SET version = version + 1 WHERE id = 1; END;
CREATE TRIGGER cache_version_allowlist_entries_insert AFTER INSERT ON allowlist_entries
    BEGIN UPDATE cache_version SET version = version + 1 WHERE id = 1; END;
CREATE TRIGGER cache_version_allowlist_entries_update AFTER UPDATE ON allowlist_entries
    BEGIN UPDATE cache_version SET version = version + 1 WHERE id = 1; END;
CREATE TRIGGER cache_version_allowlist_entries_delete AFTER DELETE ON allowlist_entries
    BEGIN UPDATE cache_version SET version = version + 1 WHERE id = 1; END;
CREATE TRIGGER cache_version_outbound_entries_insert AFTER INSERT ON outbound_entries
    BEGIN UPDATE cache_version SET version = version + 1 WHERE id = 1; END;
CREATE TRIGGER cache_version_outbound_entries_update AFTER UPDATE ON outbound_entries
    BEGIN UPDATE cache_version SET version = version + 1 WHERE id = 1; END;
CREATE TRIGGER cache_version_outbound_entries_delete AFTER DELETE ON outbound_entries
    BEGIN UPDATE cache_version SET version = version + 1 WHERE id = 1; END;
CREATE TRIGGER cache_version_instance_settings_insert AFTER INSERT ON instance_settings
    BEGIN UPDATE cache_version SET version = version + 1 WHERE id = 1; END;
CREATE TRIGGER cache_version_instance_settings_update AFTER UPDATE ON instance_settings
    BEGIN UPDATE cache_version SET version = version + 1 WHERE id = 1; END;
CREATE TRIGGER cache_version_instance_settings_delete AFTER DELETE ON instance_settings
    BEGIN UPDATE cache_version SET version = version + 1 WHERE id = 1; END;
