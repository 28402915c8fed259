import { defineConsumer } from "../../events/consumers";
import { defineEvent } from "../../events/definition";

/** A fixture event with its schema in test/fixtures/schemas/events/. */
export interface WidgetCreated {
	id: string;
	name: string;
	tags?: string[];
}

export const WidgetCreated = defineEvent<WidgetCreated>("test", "widget", "created");
export const widgetIndexer = defineConsumer("widgets", WidgetCreated);
