CREATE TABLE "document_chunks" (
	"document_id" uuid NOT NULL,
	"idx" integer NOT NULL,
	"org_id" text NOT NULL,
	"data" "bytea" NOT NULL,
	CONSTRAINT "document_chunks_document_id_idx_pk" PRIMARY KEY("document_id","idx")
);
--> statement-breakpoint
CREATE TABLE "documents" (
	"id" uuid PRIMARY KEY NOT NULL,
	"org_id" text NOT NULL,
	"owner_kind" text NOT NULL,
	"record_id" uuid,
	"salt" "bytea" NOT NULL,
	"wrapped_key" "bytea" NOT NULL,
	"key_version" integer NOT NULL,
	"nonce_prefix" "bytea" NOT NULL,
	"name_plain" text,
	"name_sealed" "bytea",
	"media_type" text NOT NULL,
	"size_bytes" bigint NOT NULL,
	"stored_bytes" bigint NOT NULL,
	"chunk_count" integer NOT NULL,
	"checksum" text NOT NULL,
	"private" boolean NOT NULL,
	"source" text NOT NULL,
	"created_by_kind" text NOT NULL,
	"created_by_id" text NOT NULL,
	"created_at" timestamp with time zone NOT NULL,
	"retention_until" timestamp with time zone NOT NULL,
	"deleted_at" timestamp with time zone
);
--> statement-breakpoint
CREATE TABLE "message_attachments" (
	"message_id" uuid NOT NULL,
	"document_id" uuid NOT NULL,
	"org_id" text NOT NULL,
	"thread_id" uuid NOT NULL,
	"position" integer NOT NULL,
	CONSTRAINT "message_attachments_message_id_document_id_pk" PRIMARY KEY("message_id","document_id")
);
--> statement-breakpoint
CREATE TABLE "org_settings" (
	"org_id" text PRIMARY KEY NOT NULL,
	"storage_allocation_bytes" bigint,
	"retention_years" integer,
	"used_bytes" bigint NOT NULL,
	"document_count" integer NOT NULL
);
--> statement-breakpoint
ALTER TABLE "document_chunks" ADD CONSTRAINT "document_chunks_document_id_documents_id_fk" FOREIGN KEY ("document_id") REFERENCES "public"."documents"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "documents" ADD CONSTRAINT "documents_record_id_records_id_fk" FOREIGN KEY ("record_id") REFERENCES "public"."records"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "message_attachments" ADD CONSTRAINT "message_attachments_message_id_messages_id_fk" FOREIGN KEY ("message_id") REFERENCES "public"."messages"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "message_attachments" ADD CONSTRAINT "message_attachments_document_id_documents_id_fk" FOREIGN KEY ("document_id") REFERENCES "public"."documents"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "message_attachments" ADD CONSTRAINT "message_attachments_thread_id_threads_id_fk" FOREIGN KEY ("thread_id") REFERENCES "public"."threads"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "documents_org_record_idx" ON "documents" USING btree ("org_id","record_id","id");--> statement-breakpoint
CREATE INDEX "documents_org_library_idx" ON "documents" USING btree ("org_id","id") WHERE "documents"."owner_kind" = 'library';--> statement-breakpoint
CREATE INDEX "message_attachments_document_idx" ON "message_attachments" USING btree ("document_id","thread_id");