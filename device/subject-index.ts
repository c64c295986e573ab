import type { Logger } from 'pino';
import { TemplateIndex, type IdentifyResult } from './face/matcher.js';
import type { DeviceStore, StoredTemplate } from './store.js';

/**
 * The terminal's face templates in memory, for the decision flow: a TemplateIndex (typed
 * arrays, WASM SIMD screen) of the current model's templates of every consenting, active
 * subject. Built from the store once at start, then kept in step through the store's change
 * hook, so a search never decrypts templates or runs SQL. Templates of another model are never
 * compared: they are left out and the subject is marked as needing re-enrolment.
 */
export class SubjectIndex {
  private index: TemplateIndex | null = null;
  private readonly otherModel = new Set<string>();
  private readonly unsubscribe: () => void;

  constructor(
    private readonly store: DeviceStore,
    /** The face engine's model; null (no engine) keeps the index empty. */
    readonly model: string | null,
    private readonly log?: Logger,
  ) {
    this.rebuild();
    this.unsubscribe = store.onSubjectChange((subject) => (subject === null ? this.rebuild() : this.refresh(subject)));
  }

  /** Subjects enrolled with the current model. */
  get subjectCount(): number {
    return this.index?.subjectCount ?? 0;
  }

  /** Subjects whose only templates are of another model (waiting for a re-enroll campaign). */
  get awaitingReenrolment(): number {
    return this.otherModel.size;
  }

  rebuild(): void {
    this.index = null;
    this.otherModel.clear();
    const bySubject = new Map<string, StoredTemplate[]>();
    for (const { subject, template } of this.store.allTemplates()) bySubject.set(subject, [...(bySubject.get(subject) ?? []), template]);
    for (const [subject, templates] of bySubject) this.put(subject, templates);
    if (this.otherModel.size > 0) this.log?.warn({ subjects: this.otherModel.size, model: this.model }, 'templates of another model skipped: re-enrolment needed');
  }

  /** Re-reads one subject from the store (enrolled, updated, consent changed, removed). */
  refresh(subject: string): void {
    this.index?.remove(subject);
    this.otherModel.delete(subject);
    const s = this.store.getSubject(subject);
    if (!s || !s.faceConsent || s.suspended) return;
    this.put(subject, this.store.templatesOf(subject));
  }

  /** 1:N over everyone enrolled: threshold and margin rule as TemplateIndex applies them. */
  identify(probe: Float32Array, thresholds: { identify: number; margin: number }): IdentifyResult {
    if (!this.index || !this.model) return { best: null, candidates: [], outcome: 'empty' };
    // k = 2 at least: the margin rule needs the runner-up.
    return this.index.identify({ model: this.model, vector: probe }, { k: 2, threshold: thresholds.identify, margin: thresholds.margin });
  }

  /** 1:1: the best similarity to the subject's templates; null when none of this model. */
  verify(subject: string, probe: Float32Array): number | null {
    if (!this.index || !this.model) return null;
    return this.index.verify(subject, { model: this.model, vector: probe });
  }

  /** True when the subject has templates, but only of another model. */
  needsReenrolment(subject: string): boolean {
    return this.otherModel.has(subject);
  }

  close(): void {
    this.unsubscribe();
  }

  private put(subject: string, templates: StoredTemplate[]): void {
    const mine = templates.filter((t) => t.model === this.model);
    if (mine.length === 0) {
      if (templates.length > 0) this.otherModel.add(subject);
      return;
    }
    this.index ??= new TemplateIndex(this.model!, mine[0]!.vector.length);
    try {
      this.index.set(subject, mine);
    } catch (err) {
      // A stored template the index refuses (wrong length) is left out, not a crash at start.
      this.log?.error({ err, subject }, 'template refused by the face index');
    }
  }
}
