-- Roles may be limited to whole projects (a JSON list of project names), present and future.
ALTER TABLE roles ADD COLUMN projects TEXT;
