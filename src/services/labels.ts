import { badInput, UnreachableCaseError } from '../errors';

/** The public label (GraphQL CellLabel). */
export type CellLabel = 'ALL' | 'NORMAL';
/** The C-NMC folder name, used in storage keys and in imported trees. */
export type LabelFolder = 'all' | 'hem';

export function labelToFolder(label: CellLabel): LabelFolder {
  switch (label) {
    case 'ALL':
      return 'all';
    case 'NORMAL':
      return 'hem';
    default:
      throw new UnreachableCaseError(label);
  }
}

export function folderToLabel(folder: string): CellLabel | null {
  if (folder === 'all') return 'ALL';
  if (folder === 'hem') return 'NORMAL';
  return null;
}

/** The ML core's encoding: 1 = ALL (the positive class), 0 = normal. */
export const labelToClass = (label: CellLabel): 0 | 1 => (label === 'ALL' ? 1 : 0);
export const classToLabel = (value: 0 | 1): CellLabel => (value === 1 ? 'ALL' : 'NORMAL');

const SUBJECT = /^[A-Za-z0-9][A-Za-z0-9.-]{0,63}$/;

/** Subject ids land in storage keys: letters, digits, '.', '-', at most 64 characters. */
export function validateSubjectId(subjectId: string | null | undefined): string | null {
  if (subjectId == null || subjectId === '') return null;
  if (!SUBJECT.test(subjectId)) {
    throw badInput('subjectId must be 1-64 letters, digits, "." or "-", starting with a letter or digit.', {
      field: 'subjectId',
    });
  }
  return subjectId;
}
