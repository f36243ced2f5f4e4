-- Lists and deletions (issue 9 points 1 and 2): a project's pipelines page by id, and the checks
-- that refuse to delete a runner, project or group still depended on, read indexes instead of
-- scanning their tables.
CREATE INDEX pipelines_project ON pipelines (project_id, id);
CREATE INDEX jobs_runner ON jobs (runner_id);
CREATE INDEX groups_parent ON groups (parent_id);
CREATE INDEX runners_group ON runners (group_id);
CREATE INDEX runner_projects_project ON runner_projects (project_id);
CREATE INDEX allowlist_entries_source ON allowlist_entries (source_kind, source_id);
CREATE INDEX outbound_entries_target ON outbound_entries (target_kind, target_id);
