/**
 * Where mail goes: SMTP through nodemailer when SMTP_URL is set, otherwise `.eml` files in
 * MAIL_DIR (a pickup folder, honoured in production too). Every mail carries a Message-ID
 * derived from its outbox row, so a resend after a crash can be recognised by receivers.
 */
import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import nodemailer from 'nodemailer';

export interface OutgoingMail {
  messageId: string;
  from: string;
  to: string;
  subject: string;
  text: string;
}

export interface MailTransport {
  send(mail: OutgoingMail): Promise<void>;
  close(): void;
}

export function createMailTransport(options: { smtpUrl?: string; mailDir: string }): MailTransport {
  if (options.smtpUrl) {
    const transporter = nodemailer.createTransport(options.smtpUrl);
    return {
      async send(mail) {
        await transporter.sendMail({ ...mail, messageId: mail.messageId });
      },
      close: () => transporter.close(),
    };
  }
  const builder = nodemailer.createTransport({ streamTransport: true, buffer: true, newline: 'unix' });
  return {
    async send(mail) {
      mkdirSync(options.mailDir, { recursive: true, mode: 0o700 });
      const info = (await builder.sendMail({ ...mail, messageId: mail.messageId })) as unknown as { message: Buffer };
      const safeId = mail.messageId.replace(/[^A-Za-z0-9.@-]/g, '_');
      const file = path.join(options.mailDir, `${safeId}.eml`);
      // Write then rename: a pickup agent never sees half a file, and a resend overwrites.
      writeFileSync(`${file}.tmp`, info.message, { mode: 0o600 });
      renameSync(`${file}.tmp`, file);
    },
    close: () => builder.close(),
  };
}
