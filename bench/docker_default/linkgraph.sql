-- Docker 1.x's link graph (graphdb): its schema and its root entity, "/". Safe to run again.
CREATE TABLE IF NOT EXISTS entity (id text NOT NULL PRIMARY KEY);
CREATE TABLE IF NOT EXISTS edge (entity_id text NOT NULL, parent_id text NULL, name text NOT NULL, CONSTRAINT parent_fk FOREIGN KEY (parent_id) REFERENCES entity (id), CONSTRAINT entity_fk FOREIGN KEY (entity_id) REFERENCES entity (id));
CREATE UNIQUE INDEX IF NOT EXISTS name_parent_ix ON edge (parent_id, name);
INSERT OR IGNORE INTO entity (id) VALUES ('0');
INSERT INTO edge (entity_id, name) SELECT '0', '/' WHERE NOT EXISTS (SELECT 1 FROM edge WHERE entity_id = '0' AND parent_id IS NULL);
