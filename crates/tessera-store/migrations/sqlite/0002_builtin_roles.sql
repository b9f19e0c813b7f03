-- The built-in roles every organization has (see roles::BUILTIN_ROLES); new organizations
-- get them when created, existing ones here. A custom role already using a built-in name
-- keeps it, and that organization goes without the built-in of the same name.
INSERT OR IGNORE INTO roles (id, org_id, name, scopes, environments, environment_tags, permission_set_ids, created_at)
SELECT 'reader@' || name, id, 'Environment Read', '["environment:read"]', NULL, NULL, '[]', created_at FROM orgs;
INSERT OR IGNORE INTO roles (id, org_id, name, scopes, environments, environment_tags, permission_set_ids, created_at)
SELECT 'opener@' || name, id, 'Environment Open', '["environment:read","environment:open"]', NULL, NULL, '[]', created_at FROM orgs;
INSERT OR IGNORE INTO roles (id, org_id, name, scopes, environments, environment_tags, permission_set_ids, created_at)
SELECT 'editor@' || name, id, 'Environment Write', '["environment:read","environment:open","environment:write","environment:tag"]', NULL, NULL, '[]', created_at FROM orgs;
INSERT OR IGNORE INTO roles (id, org_id, name, scopes, environments, environment_tags, permission_set_ids, created_at)
SELECT 'admin@' || name, id, 'Environment Admin', '["environment:read","environment:open","environment:write","environment:tag","environment:rotate","environment:delete"]', NULL, NULL, '[]', created_at FROM orgs;
