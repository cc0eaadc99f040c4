import { Check, Column, Entity, JoinColumn, ManyToOne, PrimaryColumn, type Relation } from "typeorm";
import type { VoicemailMessage } from "./voicemail-message.entity";

/** One ordered piece of a message's audio (see the Voicemail migration); written and read only by VoicemailService. */
@Entity({ name: "voicemail_audio_chunk" })
@Check("ck_voicemail_audio_chunk__ordinal", `"ordinal" >= 0`)
export class VoicemailAudioChunk {
  @PrimaryColumn({ type: "integer", primaryKeyConstraintName: "pk_voicemail_audio_chunk" })
  messageId!: number;

  @PrimaryColumn({ type: "integer", primaryKeyConstraintName: "pk_voicemail_audio_chunk" })
  ordinal!: number;

  @ManyToOne("VoicemailMessage", { onDelete: "CASCADE" })
  @JoinColumn({ name: "message_id", foreignKeyConstraintName: "fk_voicemail_audio_chunk__message" })
  messageRow?: Relation<VoicemailMessage>;

  @Column({ type: "bytea" })
  data!: Buffer;
}
