/** What a fake server (Kubernetes API, Elasticsearch) recorded of one request, for request-level assertions. */
export interface RecordedRequest {
	method: string;
	/** Without the query string. */
	path: string;
	query: Record<string, string>;
	contentType?: string;
	/** Parsed JSON body; an NDJSON body (bulk) as an array of parsed lines. */
	body?: any;
}
