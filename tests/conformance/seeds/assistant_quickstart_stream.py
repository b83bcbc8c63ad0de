# The streaming variant of DashScope's Assistant API getting-started script (the painting
# assistant), as its documentation gives it. Kept unmodified: it must run as is against
# `kit serve` once DASHSCOPE_HTTP_BASE_URL and DASHSCOPE_API_KEY point at the server.
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

# 4. Run the assistant on the thread, streaming its output
print("Generating...")
run_iterator = dashscope.Runs.create(thread.id, assistant_id=painting_assistant.id, stream=True)
for event, data in run_iterator:
    if event == 'thread.run.created':
        print("Run created: " + data.id)
    elif event == 'thread.message.delta':
        print(data.delta.content.text.value, end='', flush=True)
    elif event == 'thread.run.completed':
        print("\nRun completed, status: " + data.status)
    elif event == 'error':
        print(f"\nError: {data}")
        sys.exit(1)
print()

# 5. Retrieve and print the assistant's reply
messages = dashscope.Messages.list(thread.id)
check_status(messages, "Message retrieval")

print("\nAssistant response:")
print(json.dumps(messages, ensure_ascii=False, default=lambda o: o.__dict__, sort_keys=True, indent=4))
