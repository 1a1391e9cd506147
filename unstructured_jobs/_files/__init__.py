"""Files: a job's inputs, the streaming multipart body, downloads and elements."""
