-- demo data for local development
INSERT INTO patients (mrn, first_name, last_name, dob, phone) VALUES
  ('MRN-55120987', 'Haruto', 'Nakamura', '1990-02-11', '(503) 399-4411'),
  ('MRN-XXXXXX', 'Jane', 'Doe', '1900-01-01', '000-000-0000');
