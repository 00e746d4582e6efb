import { uuidv7 } from 'uuidv7';

/** Ids of our own objects are UUIDv7: time-ordered, so they page and index well. */
export const newId = (): string => uuidv7();

export const UUID_PATTERN = '^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$';
