import { Field, ID, Int, ObjectType } from "type-graphql";
import { Check, Column, CreateDateColumn, Entity, Index, JoinColumn, ManyToOne, PrimaryGeneratedColumn, type Relation, Unique, UpdateDateColumn } from "typeorm";
import type { Extension } from "../extension/extension.entity";

/**
 * One voicemail message of an extension, without its audio (that lives in voicemail_audio_chunk, so
 * listing messages never reads audio). Keyed for the engine by (extension, messageId); goes with
 * the extension.
 */
@ObjectType({ simpleResolvers: true, description: "A voicemail message left for an extension." })
@Entity({ name: "voicemail_message" })
@Unique("uq_voicemail_message__extension_id__message_id", ["extensionId", "messageId"])
@Index("ix_voicemail_message__extension_id__received_at__id", ["extensionId", "receivedAt", "id"])
@Index("ix_voicemail_message__tenant_id", ["tenantId"])
@Index("ix_voicemail_message__received_at", ["receivedAt"])
@Check("ck_voicemail_message__duration_seconds", `"duration_seconds" >= 0`)
@Check("ck_voicemail_message__size_bytes", `"size_bytes" > 0`)
export class VoicemailMessage {
  @Field(() => ID)
  @PrimaryGeneratedColumn("identity", { generatedIdentity: "ALWAYS", primaryKeyConstraintName: "pk_voicemail_message" })
  id!: number;

  @Field(() => ID)
  @Column({ type: "integer" })
  tenantId!: number;

  @Column({ type: "integer" })
  extensionId!: number;

  @ManyToOne("Extension", { onDelete: "CASCADE" })
  @JoinColumn([
    { name: "extension_id", referencedColumnName: "id", foreignKeyConstraintName: "fk_voicemail_message__extension" },
    { name: "tenant_id", referencedColumnName: "tenantId" },
  ])
  extensionRow?: Relation<Extension>;

  @Field({ description: "The SIP engine's id of the message, unique per extension." })
  @Column({ type: "varchar", length: 255 })
  messageId!: string;

  @Field(() => String, { nullable: true, description: "The call that left the message; its CDR leg is `cdr`." })
  @Column({ type: "varchar", length: 255, nullable: true })
  callId!: string | null;

  @Field(() => String, { nullable: true })
  @Column({ type: "varchar", length: 64, nullable: true })
  callerNumber!: string | null;

  @Field(() => String, { nullable: true })
  @Column({ type: "varchar", length: 255, nullable: true })
  callerName!: string | null;

  @Field()
  @Column({ type: "timestamptz" })
  receivedAt!: Date;

  @Field(() => Int)
  @Column({ type: "integer" })
  durationSeconds!: number;

  @Field()
  @Column({ type: "boolean", default: false })
  heard!: boolean;

  @Field({ description: "The audio's media type: audio/wav, audio/x-wav, audio/ogg or audio/mpeg." })
  @Column({ type: "varchar", length: 32 })
  contentType!: string;

  @Field(() => Int, { description: "The audio's size in bytes." })
  @Column({ type: "integer" })
  sizeBytes!: number;

  @CreateDateColumn({ type: "timestamptz" })
  createdAt!: Date;

  @UpdateDateColumn({ type: "timestamptz" })
  updatedAt!: Date;
}
