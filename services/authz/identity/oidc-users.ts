/**
 * The default claims mapper: an IdP identity (issuer + subject) is linked to one local user, created on first
 * sign-in. Never matched by name or e-mail, so an IdP account cannot take over a local one that shares its name.
 */
import { createHash } from "node:crypto";
import type { Directory } from "../directory/directory";
import type { RecordStore } from "../store";
import type { ClaimsMapper } from "./oidc";

export interface OidcLink {
	key: string;
	user_id: string;
}

export function linkedUsers(directory: Directory, links: RecordStore<OidcLink>): ClaimsMapper {
	return async (claims) => {
		const key = `${claims.iss}|${claims.sub}`;
		const link = await links.get(key);
		if (link) return link.user_id;
		const userId = `oidc-${createHash("sha256").update(key).digest("hex").slice(0, 16)}`;
		const name = typeof claims.name === "string" ? claims.name : typeof claims.email === "string" ? claims.email : claims.sub;
		await directory.putUser({ id: userId, name, ...(typeof claims.email === "string" ? { email: claims.email } : {}) }, { actor: "system" });
		await links.put(key, { key, user_id: userId });
		return userId;
	};
}
