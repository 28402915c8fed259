import pino, { type LoggerOptions } from "pino";
import type { LogLevel } from "./config";

/** Fields that must never reach a log line, wherever they appear in a logged object. */
export const REDACTED_PATHS = [
	"password",
	"token",
	"secret",
	"authorization",
	"apiKey",
	"api_key",
	"credentials",
	"jwt",
	"seed",
	"*.password",
	"*.token",
	"*.secret",
	"*.authorization",
	"*.apiKey",
	"*.api_key",
	"*.credentials",
	"*.jwt",
	"*.seed",
	"*.headers.authorization",
];

export function pinoOptions(level: LogLevel): LoggerOptions {
	return {
		level,
		redact: { paths: REDACTED_PATHS, censor: "***" },
		timestamp: pino.stdTimeFunctions.isoTime,
	};
}

/** The logger of the process outside Moleculer (start-up, shutdown, the embedded NATS). */
export function createLogger(level: LogLevel, name = "savassan"): pino.Logger {
	return pino({ ...pinoOptions(level), name });
}
