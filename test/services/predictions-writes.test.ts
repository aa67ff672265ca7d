import { readFileSync } from 'node:fs';
import path from 'node:path';
import { ErrorCode } from '../../src/errors';
import { ANONYMOUS_ADMIN, type Caller } from '../../src/services/auth';
import type { ModelRegistry } from '../../src/services/models';
import { PredictionService } from '../../src/services/predictions';
import { JsonDocuments } from '../../src/storage/json-documents';
import { layout } from '../../src/storage/layout';
import type { ObjectStore } from '../../src/storage/object-store';
import { sampleImages } from '../helpers/sample';
import { startResolverHarness, type ResolverHarness } from '../helpers/resolvers';
import { registerUntrainedModel } from '../helpers/untrained-model';
import { postUpload } from '../helpers/upload';

/**
 * predict writes the image and the owner marker while the analysis runs, and the heat map, the record and
 * the review marker after it. Whatever fails first, the write or the analysis, the call fails with that
 * error only once every write it started has settled, and no record or review marker exists: a prediction
 * is visible only when everything it points to is stored. Over a real local S3; the faults are injected
 * by a store that wraps it.
 */
describe('PredictionService writes around the analysis', () => {
  let h: ResolverHarness;
  const cell = sampleImages()[3]; // a real 450x450 C-NMC cell

  beforeAll(async () => {
    h = await startResolverHarness();
    const card = await registerUntrainedModel(h.services, { notes: 'untrained, for the write tests' });
    await h.services.models.promote(ANONYMOUS_ADMIN, card.version);
  });
  afterAll(() => h?.stop());

  /** The real store, with each put logged and, for keys `failing` matches, refused after `delayMs`. */
  function faultyStore(failing: RegExp, delayMs: number) {
    const events: string[] = [];
    const real = h.services.store;
    const store = new Proxy(real, {
      get(target, name, receiver) {
        if (name !== 'put') return Reflect.get(target, name, receiver);
        return async (...args: Parameters<ObjectStore['put']>) => {
          const key = args[0];
          events.push(`start ${key}`);
          try {
            if (failing.test(key)) {
              await new Promise((resolve) => setTimeout(resolve, delayMs));
              throw new Error(`injected fault writing ${key}`);
            }
            return await real.put(...args);
          } finally {
            events.push(`end ${key}`);
          }
        };
      },
    });
    return { store, events };
  }

  function service(store: ObjectStore, models: ModelRegistry = h.services.models) {
    const { datasets, config, log } = h.services;
    // JsonDocuments over the wrapped store, so the owner marker and the record go through it too.
    return new PredictionService(store, new JsonDocuments(store), models, datasets, config.limits, log);
  }

  const partner = (name: string): Caller => ({ keyId: name, role: 'PARTNER', partnerId: name });

  async function storedUnder(partnerId: string): Promise<string[]> {
    const keys = (await h.services.store.listAll(layout.predictionsPrefix(partnerId))).map((o) => o.key);
    return keys.filter((k) => /\/[0-9a-z]{26}\.json$/.test(k));
  }

  /** Nothing the failed call started writing is left: no object under the partner, no owner marker. */
  async function expectNothingLeft(partnerId: string, events: string[]): Promise<void> {
    expect(await h.services.store.listAll(layout.predictionsPrefix(partnerId))).toEqual([]);
    const owners = events
      .filter((e) => e.startsWith('start '))
      .map((e) => e.slice(6))
      .filter((key) => key.startsWith('prediction-owners/'));
    expect(owners).toHaveLength(1);
    expect(await h.services.store.head(owners[0])).toBeNull();
  }

  it('stores image, owner, heat map, record and review marker for a prediction that succeeds', async () => {
    const { store, events } = faultyStore(/^$/, 0);
    const caller = partner('writes-ok');
    const record = await service(store).predict(caller, { imageBase64: cell.bytes.toString('base64') });
    expect(await storedUnder(caller.partnerId)).toEqual([layout.prediction(caller.partnerId, record.id)]);
    expect(await h.services.store.head(record.imageKey)).not.toBeNull();
    expect(await h.services.store.head(record.heatmapKey!)).not.toBeNull();
    expect(await h.services.store.head(layout.predictionOwner(record.id))).not.toBeNull();
    const starts = events.filter((e) => e.startsWith('start ')).map((e) => e.slice(6));
    // The record is started only after every artifact it points to has been written.
    const recordAt = events.indexOf(`start ${layout.prediction(caller.partnerId, record.id)}`);
    for (const key of [record.imageKey, record.heatmapKey!, layout.predictionOwner(record.id)])
      expect(events.indexOf(`end ${key}`)).toBeLessThan(recordAt);
    expect(starts.indexOf(record.imageKey)).toBeLessThan(starts.indexOf(record.heatmapKey!));
    // An untrained network's call needs review: its marker is written beside the record, not after it.
    expect(record.needsReview).toBe(true);
    const markerAt = events.indexOf(`start ${layout.pendingReview(record.id)}`);
    expect(markerAt).toBeGreaterThan(-1);
    expect(markerAt).toBeLessThan(events.indexOf(`end ${layout.prediction(caller.partnerId, record.id)}`));
    expect(await h.services.store.head(layout.pendingReview(record.id))).not.toBeNull();
  });

  it.each([
    ['the review marker', /^reviews\/pending\//],
    ['the record', /^predictions\/writes-commit-[a-z]+\/[0-9a-z]{26}\.json$/],
  ])('fails when %s cannot be stored, and leaves neither record nor marker', async (_what, failing) => {
    const { store, events } = faultyStore(failing, 20);
    const caller = partner(`writes-commit-${failing.source.includes('reviews') ? 'marker' : 'record'}`);
    await expect(
      service(store).predict(caller, { imageBase64: cell.bytes.toString('base64') }),
    ).rejects.toThrow(/injected fault writing/);
    const markers = events.filter((e) => e.startsWith('start reviews/pending/'));
    expect(markers).toHaveLength(1);
    expect(await h.services.store.head(markers[0].slice(6))).toBeNull();
    expect(await storedUnder(caller.partnerId)).toEqual([]);
    await expectNothingLeft(caller.partnerId, events);
  });

  it('review queue skips a marker whose record is not stored, instead of failing the page', async () => {
    const caller = partner('writes-queue');
    const flagged = await service(h.services.store).predict(caller, {
      imageBase64: cell.bytes.toString('base64'),
    });
    // A marker left by a call whose record never landed (the id sorts after every real one).
    const orphan = 'zzzzzzzzzzzzzzzzzzzzzzzzzz';
    await h.services.docs.create(layout.pendingReview(orphan), { partnerId: caller.partnerId });
    try {
      const queue = service(h.services.store);
      const all = await queue.reviewQueue(ANONYMOUS_ADMIN, 1000);
      expect(all.items.map((i) => i.node.id)).toContain(flagged.id);
      expect(all.items.map((i) => i.node.id)).not.toContain(orphan);
      expect(all.hasNextPage).toBe(false);
      const reasons = await queue.reviewQueue(ANONYMOUS_ADMIN, 1000, undefined, flagged.reviewReasons![0]);
      expect(reasons.items.map((i) => i.node.id)).toContain(flagged.id);
      // Paged one at a time, the last real page says there is no next one.
      const ids: string[] = [];
      let after: string | undefined;
      for (let page = 0; page < 1000; page++) {
        const p = await queue.reviewQueue(ANONYMOUS_ADMIN, 1, after);
        ids.push(...p.items.map((i) => i.node.id));
        if (!p.hasNextPage) break;
        after = p.items[0].node.id;
      }
      expect(ids).toEqual(all.items.map((i) => i.node.id));
    } finally {
      await h.services.store.delete(layout.pendingReview(orphan));
    }
  });

  it('fails with the write error when the image cannot be stored during the analysis, and keeps no record', async () => {
    const { store, events } = faultyStore(/\.image\./, 30);
    const caller = partner('writes-image-fault');
    await expect(
      service(store).predict(caller, { imageBase64: cell.bytes.toString('base64') }),
    ).rejects.toThrow(/injected fault writing .*\.image\.bmp/);
    expect(await storedUnder(caller.partnerId)).toEqual([]);
    expect(events.some((e) => e.startsWith('start reviews/'))).toBe(false);
    expect(events.filter((e) => e.startsWith('start ')).length).toBe(
      events.filter((e) => e.startsWith('end ')).length,
    );
    // The owner marker was stored while the image write failed; the failed call removed it again.
    await expectNothingLeft(caller.partnerId, events);
  });

  it('fails with the analysis error when the card is damaged, after the writes it started have settled', async () => {
    const { store, events } = faultyStore(/\.image\./, 300);
    const caller = partner('writes-analysis-fault');
    const models = new Proxy(h.services.models, {
      get(target, name, receiver) {
        if (name !== 'load') return Reflect.get(target, name, receiver);
        return async (version: string) => {
          const loaded = await target.load(version);
          // A morphology stack that does not parse: analyzeCell refuses it after the network has run.
          return { ...loaded, card: { ...loaded.card, fusion: { kind: 'damaged' } } };
        };
      },
    });
    await expect(
      service(store, models as ModelRegistry).predict(caller, {
        imageBase64: cell.bytes.toString('base64'),
      }),
    ).rejects.toThrow(/malformed morphology stack/);
    // The image write (held 300 ms, then refused) had ended before the call answered.
    expect(events.filter((e) => e.startsWith('end ')).some((e) => /\.image\./.test(e))).toBe(true);
    expect(await storedUnder(caller.partnerId)).toEqual([]);
    expect(events.some((e) => /\.heatmap\.|\/[0-9a-z]{26}\.json$|^start reviews\//.test(e))).toBe(false);
    await expectNothingLeft(caller.partnerId, events);
  });

  it('removes the image and owner marker it stored when the heat map cannot be stored', async () => {
    const { store, events } = faultyStore(/\.heatmap\./, 0);
    const caller = partner('writes-heatmap-fault');
    await expect(
      service(store).predict(caller, { imageBase64: cell.bytes.toString('base64') }),
    ).rejects.toThrow(/injected fault writing .*\.heatmap\./);
    expect(events.some((e) => /^end .*\.image\./.test(e))).toBe(true);
    await expectNothingLeft(caller.partnerId, events);
  });

  describe('the model, looked up while the image is read and decoded', () => {
    /** The store as it is, with the key of each get and head logged as it is asked for. */
    function loggingStore() {
      const asked: string[] = [];
      const real = h.services.store;
      const store = new Proxy(real, {
        get(target, name, receiver) {
          const method = Reflect.get(target, name, receiver) as unknown;
          if ((name !== 'get' && name !== 'head') || typeof method !== 'function') return method;
          return (key: string, ...rest: unknown[]) => {
            asked.push(key);
            return (method as (...a: unknown[]) => unknown).call(target, key, ...rest);
          };
        },
      });
      return { store, asked };
    }

    /** The registry as it is, but for productionVersion, which `read` answers, given the real one. */
    function readingAlias(
      read: (real: () => Promise<string | null>) => Promise<string | null>,
    ): ModelRegistry {
      return new Proxy(h.services.models, {
        get(target, name, receiver) {
          if (name !== 'productionVersion') return Reflect.get(target, name, receiver);
          return () => read(() => target.productionVersion());
        },
      });
    }

    /** No production model: the alias's GET goes to the local S3 and its answer is dropped. */
    const withoutProduction = () =>
      readingAlias(async (real) => {
        await real();
        return null;
      });

    /** Each read of the production alias logged in `asked`. */
    const loggingRegistry = (asked: string[]) =>
      readingAlias((real) => {
        asked.push(layout.productionAlias());
        return real();
      });

    const corruptPng = readFileSync(path.join(__dirname, '../fixtures/bad-images/png-corrupt-data.png'));

    it('asks for the production alias before it reads the uploaded image', async () => {
      const caller = partner('lookup-order');
      const { upload, url, fields } = await h.services.datasets.createUpload(
        caller,
        { contentType: 'image/bmp' },
        60,
      );
      const grant = { url, fields: Object.entries(fields).map(([name, value]) => ({ name, value })) };
      expect((await postUpload(grant, cell.bytes, 'image/bmp')).status).toBe(204);
      await h.services.datasets.confirmUpload(caller, upload.uploadId);
      const { store, asked } = loggingStore();
      const record = await service(store, loggingRegistry(asked)).predict(caller, {
        uploadId: upload.uploadId,
        explain: false,
      });
      expect(record.source).toBe(`upload:${upload.uploadId}`);
      const alias = asked.indexOf(layout.productionAlias());
      const image = asked.findIndex((key) => key.startsWith(layout.uploadsPrefix()));
      expect(alias).toBeGreaterThanOrEqual(0);
      expect(image).toBeGreaterThan(alias);
    });

    it("reports the image's own faults first, then a missing production model, then a failed decode", async () => {
      const caller = partner('lookup-precedence');
      const { store, events } = faultyStore(/^$/, 0);
      const predict = (models: ModelRegistry, bytes: Buffer | string) =>
        service(store, models).predict(caller, {
          imageBase64: typeof bytes === 'string' ? bytes : bytes.toString('base64'),
          explain: false,
        });
      // Not base64, and no production model: the image's error, as when the lookup came after it.
      await expect(predict(withoutProduction(), '@@not base64@@')).rejects.toMatchObject({
        code: ErrorCode.BAD_USER_INPUT,
        message: expect.stringMatching(/not valid base64/),
      });
      // A real cell, no production model.
      await expect(predict(withoutProduction(), cell.bytes)).rejects.toMatchObject({
        code: ErrorCode.UNAVAILABLE,
      });
      // A PNG whose header passes and whose pixels do not decode: the missing model is reported, the
      // decode failing meanwhile is not left unhandled; with a production model, the decode's error.
      await expect(predict(withoutProduction(), corruptPng)).rejects.toMatchObject({
        code: ErrorCode.UNAVAILABLE,
      });
      await expect(predict(h.services.models, corruptPng)).rejects.toMatchObject({
        code: ErrorCode.UNSUPPORTED_IMAGE,
      });
      // None of them wrote anything.
      expect(events).toEqual([]);
      expect(await h.services.store.listAll(layout.predictionsPrefix(caller.partnerId))).toEqual([]);
    });
  });
});
