/** Header names carried by every message the platform publishes. */
export const HEADERS = {
	/** JetStream de-duplication key: a republish with the same id inside the window is stored once. */
	msgId: "Nats-Msg-Id",
	traceId: "Savassan-Trace-Id",
	eventType: "Savassan-Event-Type",
	schemaVersion: "Savassan-Schema-Version",
} as const;

/** Headers a dead letter adds to the original message's own. */
export const DLQ_HEADERS = {
	reason: "Savassan-Dlq-Reason",
	error: "Savassan-Dlq-Error",
	stream: "Savassan-Dlq-Stream",
	subject: "Savassan-Dlq-Subject",
	seq: "Savassan-Dlq-Seq",
	msgId: "Savassan-Dlq-Msg-Id",
	consumer: "Savassan-Dlq-Consumer",
	deliveries: "Savassan-Dlq-Deliveries",
	failedAt: "Savassan-Dlq-Failed-At",
} as const;

/** Why a message was dead-lettered. */
export type DeadLetterReason = "malformed" | "schema" | "handler-failed" | "max-deliveries";
