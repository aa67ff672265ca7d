import { ErrorCode } from '../../src/errors';
import {
  classToLabel,
  folderToLabel,
  labelToClass,
  labelToFolder,
  validateSubjectId,
} from '../../src/services/labels';

describe('labels', () => {
  it('maps the API labels to C-NMC folders and the ML classes and back', () => {
    for (const label of ['ALL', 'NORMAL'] as const) {
      expect(folderToLabel(labelToFolder(label))).toBe(label);
      expect(classToLabel(labelToClass(label))).toBe(label);
    }
    expect([labelToFolder('ALL'), labelToFolder('NORMAL')]).toEqual(['all', 'hem']);
    expect([labelToClass('ALL'), labelToClass('NORMAL')]).toEqual([1, 0]); // ALL is the positive class
    expect(folderToLabel('other')).toBeNull();
  });

  it('accepts subject ids that are safe in a storage key, up to 64 characters, and refuses the rest', () => {
    expect(validateSubjectId('H23.7-b')).toBe('H23.7-b');
    expect(validateSubjectId('a'.repeat(64))).toBe('a'.repeat(64));
    expect(validateSubjectId(null)).toBeNull();
    expect(validateSubjectId('')).toBeNull();
    for (const bad of ['a'.repeat(65), '.hidden', 'a/b', 'a b', 'ä', '../x']) {
      expect(() => validateSubjectId(bad)).toThrow(
        expect.objectContaining({ code: ErrorCode.BAD_USER_INPUT, details: { field: 'subjectId' } }),
      );
    }
  });
});
