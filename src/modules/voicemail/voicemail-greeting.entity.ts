import { Check, Column, CreateDateColumn, Entity, Index, JoinColumn, ManyToOne, PrimaryColumn, type Relation, UpdateDateColumn } from "typeorm";
import type { Extension } from "../extension/extension.entity";

/** An extension's own voicemail greeting (see the VoicemailGreeting migration); written and read only by VoicemailService. */
@Entity({ name: "voicemail_greeting" })
@Index("ix_voicemail_greeting__tenant_id", ["tenantId"])
@Check("ck_voicemail_greeting__duration_ms", `"duration_ms" >= 0`)
export class VoicemailGreeting {
  @PrimaryColumn({ type: "integer", primaryKeyConstraintName: "pk_voicemail_greeting" })
  extensionId!: number;

  @Column({ type: "integer" })
  tenantId!: number;

  @ManyToOne("Extension", { onDelete: "CASCADE" })
  @JoinColumn([
    { name: "extension_id", referencedColumnName: "id", foreignKeyConstraintName: "fk_voicemail_greeting__extension" },
    { name: "tenant_id", referencedColumnName: "tenantId" },
  ])
  extensionRow?: Relation<Extension>;

  @Column({ type: "varchar", length: 32 })
  contentType!: string;

  @Column({ type: "integer" })
  durationMs!: number;

  @Column({ type: "integer" })
  sizeBytes!: number;

  @Column({ type: "integer", default: 1 })
  version!: number;

  @Column({ type: "bytea" })
  audio!: Buffer;

  @CreateDateColumn({ type: "timestamptz" })
  createdAt!: Date;

  @UpdateDateColumn({ type: "timestamptz" })
  updatedAt!: Date;
}
