/**
 * Document Storage acceptance on the default blob store (PostgreSQL rows): the suite itself is
 * in test/fixtures/document-suite.ts, shared with documents-s3.test.ts.
 */
import t from 'tap';
import { documentSuite, postgresContent } from '../../fixtures/document-suite.js';

documentSuite(t, { store: postgresContent, options: () => ({}) });
