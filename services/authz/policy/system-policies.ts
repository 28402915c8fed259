/**
 * The system roles as Cedar policies. Their ids are what decisions name as the reason. Platform-wide roles are
 * role memberships (`principal in Role::"x"`), workspace roles are tags of the user keyed by workspace.
 */
const hasRole = (role: string) =>
	`(principal in Savassan::Role::"${role}" || (principal.hasTag(resource.workspace) && principal.getTag(resource.workspace).contains("${role}")))`;

export const SYSTEM_POLICIES: Readonly<Record<string, string>> = {
	"system:platform-admin": `permit (principal in Savassan::Role::"admin", action, resource);`,
	"system:workspace-admin": `permit (principal, action, resource)
when { principal.hasTag(resource.workspace) && principal.getTag(resource.workspace).contains("admin") };`,
	"system:viewer": `permit (principal, action in Savassan::Action::"read", resource)
when { ${hasRole("viewer")} };`,
	"system:editor-read": `permit (principal, action in Savassan::Action::"read", resource)
when { ${hasRole("editor")} };`,
	"system:editor-create": `permit (principal, action in Savassan::Action::"create", resource)
when { ${hasRole("editor")} };`,
	"system:editor-own": `permit (principal, action in Savassan::Action::"write", resource)
when { ${hasRole("editor")} && resource has owner && resource.owner == principal };`,
	"system:own-api-keys": `permit (principal, action == Savassan::Action::"authz.keys.manage", resource)
when { resource has owner && resource.owner == principal };`,
};

export const isSystemPolicy = (id: string) => id.startsWith("system:");
