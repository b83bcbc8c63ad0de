# The getting-started script of DashScope's Assistant API (the painting assistant, non-streaming),
# as its documentation gives it. Kept unmodified: it must run as is against `kit serve` once
# DASHSCOPE_HTTP_BASE_URL and DASHSCOPE_API_KEY point at the server.
import json
import sys
from http import HTTPStatus

import dashscope


def check_status(component, operation):
    if component.status_code == HTTPStatus.OK:
        print(f"{operation} succeeded.")
        return True
    else:
        print(f"{operation} failed. Status code: {component.status_code}, "
              f"error code: {component.code}, error message: {component.message}")
        sys.exit(component.status_code)


# 1. Create the painting assistant
painting_assistant = dashscope.Assistants.create(
    model='qwen-max',
    name='Art Maestro',
    description='AI assistant for painting and art knowledge',
    instructions='''Provide information on painting techniques, art history, and creative guidance.
    Use tools for research and image generation.''',
    tools=[
        {'type': 'quark_search', 'description': 'For researching art topics'},
        {'type': 'text_to_image', 'description': 'For creating visual examples'}
    ]
)
check_status(painting_assistant, "Assistant creation")

# 2. Create a new thread
thread = dashscope.Threads.create()
check_status(thread, "Thread creation")

# 3. Send a message to the thread
message = dashscope.Messages.create(thread.id, content='Please help me draw a picture of a ragdoll cat.')
check_status(message, "Message creation")

# 4. Run the assistant on the thread
run = dashscope.Runs.create(thread.id, assistant_id=painting_assistant.id)
check_status(run, "Run creation")

# 5. Wait for the run to finish
print("Waiting for the assistant to process the request...")
run = dashscope.Runs.wait(run.id, thread_id=thread.id)
check_status(run, "Run completion")
print(f"Run completed, status: {run.status}")

# 6. Retrieve and print the assistant's reply
messages = dashscope.Messages.list(thread.id)
check_status(messages, "Message retrieval")

print("\nAssistant response:")
print(json.dumps(messages, ensure_ascii=False, default=lambda o: o.__dict__, sort_keys=True, indent=4))
