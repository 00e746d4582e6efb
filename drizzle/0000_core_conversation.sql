CREATE TABLE "audit_chain_heads" (
	"org_id" text PRIMARY KEY NOT NULL,
	"seq" bigint NOT NULL,
	"hash" text NOT NULL
);
--> statement-breakpoint
CREATE TABLE "audit_events" (
	"id" uuid PRIMARY KEY NOT NULL,
	"org_id" text NOT NULL,
	"seq" bigint NOT NULL,
	"prev_hash" text NOT NULL,
	"hash" text NOT NULL,
	"occurred_at" timestamp with time zone NOT NULL,
	"actor_kind" text NOT NULL,
	"actor_id" text,
	"actor_name" text,
	"action" text NOT NULL,
	"outcome" text NOT NULL,
	"record_kind" text,
	"record_id" text,
	"thread_id" uuid,
	"message_id" uuid,
	"document_id" uuid,
	"link_id" uuid,
	"ip" text,
	"user_agent" text,
	"request_id" text,
	"reason" text
);
--> statement-breakpoint
CREATE TABLE "idempotency_keys" (
	"org_id" text NOT NULL,
	"actor_id" text NOT NULL,
	"scope" text NOT NULL,
	"key" text NOT NULL,
	"fingerprint" text NOT NULL,
	"resource_id" uuid NOT NULL,
	"created_at" timestamp with time zone NOT NULL,
	CONSTRAINT "idempotency_keys_org_id_actor_id_scope_key_pk" PRIMARY KEY("org_id","actor_id","scope","key")
);
--> statement-breakpoint
CREATE TABLE "messages" (
	"id" uuid PRIMARY KEY NOT NULL,
	"org_id" text NOT NULL,
	"thread_id" uuid NOT NULL,
	"author_kind" text NOT NULL,
	"author_side" text NOT NULL,
	"author_id" text NOT NULL,
	"author_name" "bytea",
	"body" "bytea" NOT NULL,
	"sent_at" timestamp with time zone NOT NULL,
	"read_at" timestamp with time zone
);
--> statement-breakpoint
CREATE TABLE "records" (
	"id" uuid PRIMARY KEY NOT NULL,
	"org_id" text NOT NULL,
	"kind" text NOT NULL,
	"external_id" text NOT NULL,
	"salt" "bytea" NOT NULL,
	"wrapped_key" "bytea" NOT NULL,
	"key_version" integer NOT NULL,
	"display_name" "bytea" NOT NULL,
	"email" "bytea",
	"date_of_birth" "bytea",
	"phone" "bytea",
	"created_at" timestamp with time zone NOT NULL,
	"updated_at" timestamp with time zone NOT NULL
);
--> statement-breakpoint
CREATE TABLE "threads" (
	"id" uuid PRIMARY KEY NOT NULL,
	"org_id" text NOT NULL,
	"record_id" uuid NOT NULL,
	"salt" "bytea" NOT NULL,
	"wrapped_key" "bytea" NOT NULL,
	"key_version" integer NOT NULL,
	"subject" "bytea" NOT NULL,
	"reply_allowed" boolean NOT NULL,
	"state" text NOT NULL,
	"created_by_id" text NOT NULL,
	"created_by_name" text,
	"created_at" timestamp with time zone NOT NULL,
	"updated_at" timestamp with time zone NOT NULL,
	"last_activity_at" timestamp with time zone NOT NULL
);
--> statement-breakpoint
ALTER TABLE "messages" ADD CONSTRAINT "messages_thread_id_threads_id_fk" FOREIGN KEY ("thread_id") REFERENCES "public"."threads"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "threads" ADD CONSTRAINT "threads_record_id_records_id_fk" FOREIGN KEY ("record_id") REFERENCES "public"."records"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
CREATE UNIQUE INDEX "audit_events_org_seq_uq" ON "audit_events" USING btree ("org_id","seq");--> statement-breakpoint
CREATE INDEX "audit_events_org_thread_idx" ON "audit_events" USING btree ("org_id","thread_id","seq");--> statement-breakpoint
CREATE INDEX "audit_events_org_record_idx" ON "audit_events" USING btree ("org_id","record_id","seq");--> statement-breakpoint
CREATE INDEX "audit_events_org_time_idx" ON "audit_events" USING btree ("org_id","occurred_at");--> statement-breakpoint
CREATE INDEX "idempotency_keys_created_idx" ON "idempotency_keys" USING btree ("created_at");--> statement-breakpoint
CREATE INDEX "messages_thread_id_idx" ON "messages" USING btree ("thread_id","id");--> statement-breakpoint
CREATE INDEX "messages_unread_idx" ON "messages" USING btree ("thread_id","author_side") WHERE "messages"."read_at" is null;--> statement-breakpoint
CREATE UNIQUE INDEX "records_org_kind_external_uq" ON "records" USING btree ("org_id","kind","external_id");--> statement-breakpoint
CREATE INDEX "threads_org_record_activity_idx" ON "threads" USING btree ("org_id","record_id","last_activity_at" DESC NULLS LAST,"id" DESC NULLS LAST);