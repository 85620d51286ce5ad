DROP TABLE activities;
DROP TABLE task_dependencies;
DROP TABLE tasks;
DROP TABLE api_tokens;
DROP TABLE agents;
