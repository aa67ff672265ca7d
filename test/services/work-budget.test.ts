import { ErrorCode } from '../../src/errors';
import {
  currentPixelBudget,
  outsidePixelBudget,
  PixelBudget,
  withPixelBudget,
} from '../../src/services/work-budget';

describe('pixel budget per request', () => {
  it('charges pixels until the limit, refusing the image that would cross it without charging it', () => {
    const budget = new PixelBudget(1000);
    budget.spend(600);
    expect(() => budget.spend(500)).toThrow(
      expect.objectContaining({
        code: ErrorCode.PAYLOAD_TOO_LARGE,
        details: { limit: 1000, limitName: 'LYMPHOSCOPE_MAX_PIXELS_PER_REQUEST', pixels: 1100 },
      }),
    );
    budget.spend(400); // the refused 500 was not charged
    expect(() => budget.ensure(1)).toThrow(expect.objectContaining({ code: ErrorCode.PAYLOAD_TOO_LARGE }));
  });

  it('gives each request its own budget, across awaits, and none outside a request', async () => {
    expect(currentPixelBudget()).toBeUndefined();
    const seen = await Promise.all(
      [100, 200].map((limit) =>
        withPixelBudget(limit, async () => {
          await new Promise((resolve) => setTimeout(resolve, 5));
          currentPixelBudget()!.spend(limit);
          return currentPixelBudget()!.limit;
        }),
      ),
    );
    expect(seen).toEqual([100, 200]);
    expect(currentPixelBudget()).toBeUndefined();
  });

  it('lets bulk work inside a request run outside its budget (a folder import)', async () => {
    await withPixelBudget(10, async () => {
      expect(currentPixelBudget()?.limit).toBe(10);
      await outsidePixelBudget(async () => {
        await new Promise((resolve) => setTimeout(resolve, 1));
        expect(currentPixelBudget()).toBeUndefined();
      });
      expect(currentPixelBudget()?.limit).toBe(10);
    });
  });
});
