"""Posts use cases."""

from functions.commands import CreatePost
from functions.events import PostCreated, PostData
from functions.ids import new_id
from functions.posts import store
from functions.settings import Settings


def create_post(settings: Settings, command: CreatePost) -> PostData:
    post = PostData(id=new_id(), title=command.title)
    store.insert(settings, post, PostCreated.of(post))
    return post
