import {
  CompareFacesCommand,
  DetectFacesCommand,
  InvalidParameterException,
  RekognitionClient,
  type RekognitionClientConfig,
} from '@aws-sdk/client-rekognition';
import { EngineError, type DetectedFace, type RecheckEngine } from './engine.js';

/**
 * Amazon Rekognition through the AWS SDK. Credentials come from the standard chain
 * (environment, shared files, instance role); `endpoint` points at a VPC or test endpoint.
 * Requests carry only image bytes.
 */
export class RekognitionEngine implements RecheckEngine {
  readonly name = 'rekognition';
  private readonly client: RekognitionClient;

  constructor(config: RekognitionClientConfig) {
    this.client = new RekognitionClient({ maxAttempts: 1, ...config });
  }

  async detectFaces(jpeg: Buffer): Promise<{ faces: DetectedFace[] }> {
    const out = await this.call(() => this.client.send(new DetectFacesCommand({ Image: { Bytes: jpeg }, Attributes: ['DEFAULT'] })));
    if (!out) return { faces: [] };
    return {
      faces: (out.FaceDetails ?? []).map((f) => {
        const b = f.BoundingBox;
        return { confidence: (f.Confidence ?? 0) / 100, ...(b ? { box: { left: b.Left ?? 0, top: b.Top ?? 0, width: b.Width ?? 0, height: b.Height ?? 0 } } : {}) };
      }),
    };
  }

  async compareFaces(source: Buffer, target: Buffer): Promise<{ similarity: number | null }> {
    const out = await this.call(() =>
      this.client.send(new CompareFacesCommand({ SourceImage: { Bytes: source }, TargetImage: { Bytes: target }, SimilarityThreshold: 0 })),
    );
    if (!out) return { similarity: null };
    const matches = out.FaceMatches ?? [];
    if (!matches.length) return { similarity: (out.UnmatchedFaces ?? []).length ? 0 : null };
    return { similarity: Math.max(...matches.map((m) => (m.Similarity ?? 0) / 100)) };
  }

  /** InvalidParameterException is how Rekognition says "no face in the source image": an answer, not a failure. */
  private async call<T>(fn: () => Promise<T>): Promise<T | null> {
    try {
      return await fn();
    } catch (err) {
      if (err instanceof InvalidParameterException) return null;
      const e = err as { name?: string; $metadata?: { httpStatusCode?: number }; message?: string };
      const status = e.$metadata?.httpStatusCode ?? 0;
      const retryable = status === 0 || status >= 500 || status === 429 || /Throttl|ProvisionedThroughput|LimitExceeded/.test(e.name ?? '');
      throw new EngineError(`rekognition ${e.name ?? 'error'}: ${(e.message ?? '').slice(0, 160)}`, retryable);
    }
  }

  async close(): Promise<void> {
    this.client.destroy();
  }
}
