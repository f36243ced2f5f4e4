-- Names are unambiguous (issue 7 point 9): usernames, group full paths and project paths are
-- unique case-insensitively, and no project has the full path of a group (as on GitLab), so
-- `sub`, `project_path` and `namespace_path` name one thing. Paths and usernames are ASCII
-- (see `http::input::path_segment`), where SQLite's lower() is exact.
-- A database that already holds such conflicts is refused before this runs (store::migrate).

CREATE UNIQUE INDEX users_username_nocase ON users (lower(username));
CREATE UNIQUE INDEX groups_full_path_nocase ON groups (lower(full_path));
CREATE UNIQUE INDEX projects_path_nocase ON projects (lower(path_with_namespace));

-- The project-vs-group rule spans two tables, so a unique index cannot hold it: triggers do.
-- Paths never change after insert (the API refuses it), so inserts are all they need to watch.
CREATE TRIGGER projects_path_not_a_group BEFORE INSERT ON projects
WHEN EXISTS (SELECT 1 FROM groups WHERE lower(full_path) = lower(NEW.path_with_namespace))
BEGIN
    SELECT RAISE(ABORT, 'name conflict: a group has this path');
END;

CREATE TRIGGER groups_path_not_a_project BEFORE INSERT ON groups
WHEN EXISTS (SELECT 1 FROM projects WHERE lower(path_with_namespace) = lower(NEW.full_path))
BEGIN
    SELECT RAISE(ABORT, 'name conflict: a project has this path');
END;

-- Paths do not change today; should they ever, the rule still holds.
CREATE TRIGGER projects_path_not_a_group_on_update BEFORE UPDATE OF path_with_namespace ON projects
WHEN EXISTS (SELECT 1 FROM groups WHERE lower(full_path) = lower(NEW.path_with_namespace))
BEGIN
    SELECT RAISE(ABORT, 'name conflict: a group has this path');
END;

CREATE TRIGGER groups_path_not_a_project_on_update BEFORE UPDATE OF full_path ON groups
WHEN EXISTS (SELECT 1 FROM projects WHERE lower(path_with_namespace) = lower(NEW.full_path))
BEGIN
    SELECT RAISE(ABORT, 'name conflict: a project has this path');
END;
