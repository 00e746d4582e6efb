CREATE TABLE "access_links" (
	"id" uuid PRIMARY KEY NOT NULL,
	"org_id" text NOT NULL,
	"thread_id" uuid NOT NULL,
	"email_sealed" "bytea" NOT NULL,
	"token_hash" text NOT NULL,
	"verify_date_of_birth" boolean NOT NULL,
	"verify_phone" boolean NOT NULL,
	"expires_at" timestamp with time zone NOT NULL,
	"revoked_at" timestamp with time zone,
	"revoked_by_id" text,
	"consecutive_failures" integer NOT NULL,
	"total_failures" integer NOT NULL,
	"locked_until" timestamp with time zone,
	"locked_permanently" boolean NOT NULL,
	"created_by_id" text NOT NULL,
	"created_by_name" text,
	"created_at" timestamp with time zone NOT NULL,
	"last_used_at" timestamp with time zone
);
--> statement-breakpoint
CREATE TABLE "email_outbox" (
	"id" uuid PRIMARY KEY NOT NULL,
	"org_id" text NOT NULL,
	"kind" text NOT NULL,
	"thread_id" uuid,
	"salt" "bytea" NOT NULL,
	"wrapped_key" "bytea" NOT NULL,
	"key_version" integer NOT NULL,
	"recipient_sealed" "bytea" NOT NULL,
	"subject" text NOT NULL,
	"body_sealed" "bytea",
	"status" text NOT NULL,
	"attempts" integer NOT NULL,
	"next_attempt_at" timestamp with time zone NOT NULL,
	"last_error" text,
	"created_at" timestamp with time zone NOT NULL,
	"sent_at" timestamp with time zone
);
--> statement-breakpoint
CREATE TABLE "external_sessions" (
	"id" uuid PRIMARY KEY NOT NULL,
	"org_id" text NOT NULL,
	"link_id" uuid NOT NULL,
	"thread_id" uuid NOT NULL,
	"token_hash" text NOT NULL,
	"created_at" timestamp with time zone NOT NULL,
	"last_seen_at" timestamp with time zone NOT NULL,
	"expires_at" timestamp with time zone NOT NULL
);
--> statement-breakpoint
ALTER TABLE "org_settings" ADD COLUMN "display_name" text;--> statement-breakpoint
ALTER TABLE "access_links" ADD CONSTRAINT "access_links_thread_id_threads_id_fk" FOREIGN KEY ("thread_id") REFERENCES "public"."threads"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "external_sessions" ADD CONSTRAINT "external_sessions_link_id_access_links_id_fk" FOREIGN KEY ("link_id") REFERENCES "public"."access_links"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
CREATE UNIQUE INDEX "access_links_token_hash_uq" ON "access_links" USING btree ("token_hash");--> statement-breakpoint
CREATE INDEX "access_links_org_thread_idx" ON "access_links" USING btree ("org_id","thread_id","id");--> statement-breakpoint
CREATE INDEX "email_outbox_due_idx" ON "email_outbox" USING btree ("next_attempt_at") WHERE "email_outbox"."status" = 'pending';--> statement-breakpoint
CREATE INDEX "email_outbox_thread_notice_idx" ON "email_outbox" USING btree ("org_id","thread_id","kind","created_at");--> statement-breakpoint
CREATE UNIQUE INDEX "external_sessions_token_hash_uq" ON "external_sessions" USING btree ("token_hash");--> statement-breakpoint
CREATE INDEX "external_sessions_link_idx" ON "external_sessions" USING btree ("link_id");