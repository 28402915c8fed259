/** Password hashing with Argon2id (OWASP parameters by default: 19 MiB, 2 passes). */
import { Algorithm, hash, verify } from "@node-rs/argon2";

export interface PasswordHashing {
	hash(password: string): Promise<string>;
	verify(stored: string, password: string): Promise<boolean>;
}

export const MIN_PASSWORD_LENGTH = 12;

export function argon2Hashing(cost: { memoryCost?: number; timeCost?: number } = {}): PasswordHashing {
	const options = { algorithm: Algorithm.Argon2id, memoryCost: cost.memoryCost ?? 19_456, timeCost: cost.timeCost ?? 2, parallelism: 1 };
	return {
		hash: (password) => hash(password, options),
		verify: async (stored, password) => {
			try {
				return await verify(stored, password);
			} catch {
				return false; // a malformed stored hash never verifies
			}
		},
	};
}
